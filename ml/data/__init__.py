"""Sample data (synthetic, mtsamples format) and the dataset upload."""
