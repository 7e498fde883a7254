"""Local run of the generated pipeline definition against moto."""
