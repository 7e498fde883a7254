"""The words and weights of the realistic synthetic corpus (`ml.data.realistic`): data only.

- `CLASS_COUNTS`: the 40 specialties, with the public mtsamples class counts as weights;
- `DOC_TYPES`: the document types' section headers and their own words;
- `GENERIC`: the words every note shares, most frequent first (Zipf-weighted);
- `TOPICS`: each specialty's own terms;
- `GROUPS`: related specialties, whose notes borrow each other's terms;
- `HUBS`: the document-type labels, each with the document type of the notes it copies;
- `SURGICAL`: the specialties half of whose notes are operative notes.

Every word is invented for the corpus: nothing comes from patients or from mtsamples.
"""

from __future__ import annotations

# The public mtsamples class counts (4,999 rows), used only as weights.
CLASS_COUNTS: dict[str, int] = {
    "Surgery": 1103,
    "Consult - History and Phy.": 516,
    "Cardiovascular / Pulmonary": 372,
    "Orthopedic": 355,
    "Radiology": 273,
    "General Medicine": 259,
    "Gastroenterology": 230,
    "Neurology": 223,
    "SOAP / Chart / Progress Notes": 166,
    "Obstetrics / Gynecology": 160,
    "Urology": 158,
    "Discharge Summary": 108,
    "ENT - Otolaryngology": 98,
    "Neurosurgery": 94,
    "Hematology - Oncology": 90,
    "Ophthalmology": 83,
    "Nephrology": 81,
    "Emergency Room Reports": 75,
    "Pediatrics - Neonatal": 70,
    "Pain Management": 62,
    "Psychiatry / Psychology": 53,
    "Office Notes": 51,
    "Podiatry": 47,
    "Dermatology": 29,
    "Cosmetic / Plastic Surgery": 27,
    "Dentistry": 27,
    "Letters": 23,
    "Physical Medicine - Rehab": 21,
    "Sleep Medicine": 20,
    "Endocrinology": 19,
    "Bariatrics": 18,
    "IME-QME-Work Comp etc.": 16,
    "Chiropractic": 14,
    "Diets and Nutritions": 10,
    "Rheumatology": 10,
    "Speech - Language": 9,
    "Autopsy": 8,
    "Lab Medicine - Pathology": 8,
    "Allergy / Immunology": 7,
    "Hospice - Palliative Care": 6,
}

# Document types: section headers and their own vocabulary.
DOC_TYPES: dict[str, tuple[tuple[str, ...], str]] = {
    "operative": (
        (
            "PREOPERATIVE DIAGNOSIS",
            "POSTOPERATIVE DIAGNOSIS",
            "PROCEDURE PERFORMED",
            "ANESTHESIA",
            "ESTIMATED BLOOD LOSS",
            "INDICATIONS",
            "DESCRIPTION OF PROCEDURE",
            "FINDINGS",
        ),
        "incision sutures anesthesia general endotracheal prepped draped sterile fashion "
        "hemostasis obtained electrocautery retractor dissection carried down closed layers "
        "vicryl nylon staples sponge needle counts correct tolerated procedure well recovery "
        "room stable condition supine position timeout performed local infiltration "
        "marcaine dressing applied drain placed specimen sent pathology",
    ),
    "consult": (
        (
            "CHIEF COMPLAINT",
            "HISTORY OF PRESENT ILLNESS",
            "PAST MEDICAL HISTORY",
            "PAST SURGICAL HISTORY",
            "MEDICATIONS",
            "ALLERGIES",
            "SOCIAL HISTORY",
            "FAMILY HISTORY",
            "REVIEW OF SYSTEMS",
            "PHYSICAL EXAMINATION",
            "IMPRESSION",
            "RECOMMENDATIONS",
        ),
        "referred consultation evaluation denies smoking alcohol occasionally lives wife "
        "husband retired works family history noncontributory known drug allergies "
        "vital signs afebrile alert oriented times three heent normocephalic atraumatic "
        "neck supple lungs clear auscultation heart regular rate rhythm abdomen soft "
        "nontender extremities edema thank you for this consultation",
    ),
    "soap": (
        ("SUBJECTIVE", "OBJECTIVE", "ASSESSMENT", "PLAN"),
        "returns follow-up doing well since last visit complains reports states feels "
        "better worse compliant medications vitals weight blood pressure pulse "
        "continue current regimen return clinic weeks recheck labs refill prescription",
    ),
    "discharge": (
        (
            "ADMISSION DIAGNOSIS",
            "DISCHARGE DIAGNOSIS",
            "HOSPITAL COURSE",
            "CONDITION ON DISCHARGE",
            "DISCHARGE MEDICATIONS",
            "DISCHARGE INSTRUCTIONS",
            "FOLLOW-UP",
        ),
        "admitted hospital course uneventful discharged home stable condition "
        "instructed follow up primary care physician diet activity as tolerated "
        "length of stay days telemetry floor transferred intensive care unit",
    ),
    "imaging": (
        ("EXAM", "INDICATION", "TECHNIQUE", "COMPARISON", "FINDINGS", "IMPRESSION"),
        "contrast axial images obtained coronal sagittal reconstructions comparison "
        "prior study no acute abnormality unremarkable visualized within normal limits "
        "measures centimeters noted demonstrated identified without evidence",
    ),
    "letter": (
        ("RE", "DEAR DOCTOR", "HISTORY", "EXAMINATION", "OPINION"),
        "dear doctor thank you for referring pleasure seeing your patient my office "
        "today sincerely yours will keep you informed please do not hesitate contact "
        "enclosed copy records",
    ),
}

GENERIC = [
    "patient",
    "the",
    "of",
    "and",
    "to",
    "was",
    "with",
    "a",
    "in",
    "is",
    "for",
    "on",
    "no",
    "this",
    "he",
    "she",
    "her",
    "his",
    "at",
    "history",
    "pain",
    "left",
    "right",
    "bilateral",
    "normal",
    "noted",
    "also",
    "which",
    "were",
    "has",
    "had",
    "as",
    "by",
    "mild",
    "moderate",
    "severe",
    "time",
    "day",
    "days",
    "weeks",
    "months",
    "year",
    "years",
    "ago",
    "prior",
    "recent",
    "chronic",
    "acute",
    "significant",
    "further",
    "status",
    "post",
    "presents",
    "today",
    "there",
    "any",
    "since",
    "been",
    "some",
    "without",
    "good",
    "well",
    "after",
    "before",
    "during",
    "over",
    "upper",
    "lower",
    "anterior",
    "posterior",
    "lateral",
    "medial",
    "area",
    "side",
    "both",
    "small",
    "large",
    "treatment",
    "therapy",
    "management",
    "plan",
    "discussed",
    "risks",
    "benefits",
    "alternatives",
    "questions",
    "answered",
    "agreed",
    "proceed",
    "given",
    "follow",
    "up",
    "clinic",
    "hospital",
    "room",
    "blood",
    "pressure",
    "heart",
    "rate",
    "temperature",
    "respiratory",
    "oxygen",
    "saturation",
    "percent",
    "medication",
    "dose",
    "daily",
    "twice",
    "three",
    "times",
    "needed",
    "tablet",
    "capsule",
    "milligram",
    "examination",
    "revealed",
    "showed",
    "consistent",
    "likely",
    "possible",
    "probable",
    "rule",
    "out",
    "labs",
    "laboratory",
    "values",
    "within",
    "limits",
    "elevated",
    "decreased",
    "stable",
    "unchanged",
]

# Each specialty's own terms (multi-word terms are kept together).
TOPICS: dict[str, str] = {
    "Surgery": "laparoscopic trocar port insufflation hernia mesh cholecystectomy appendectomy "
    "excision biopsy debridement abscess drainage",
    "Consult - History and Phy.": "consulted admitted evaluation workup comorbidities "
    "hypertension diabetes mellitus hyperlipidemia",
    "Cardiovascular / Pulmonary": "chest pain ejection fraction atrial fibrillation coronary "
    "artery disease stent catheterization echocardiogram dyspnea wheezing copd bronchoscopy "
    "pleural effusion troponin",
    "Orthopedic": "fracture knee shoulder hip arthroscopy meniscus ligament rotator cuff "
    "arthroplasty tendon cast splint range of motion",
    "Radiology": "ct scan mri ultrasound x-ray radiograph contrast lesion opacity nodule "
    "attenuation signal",
    "General Medicine": "fatigue weight loss hypertension diabetes cholesterol annual physical "
    "screening vaccination counseling",
    "Gastroenterology": "colonoscopy endoscopy polyp esophagitis gastritis reflux cecum biopsy "
    "bowel liver cirrhosis hepatitis",
    "Neurology": "seizure headache migraine tremor neuropathy stroke eeg emg gait reflexes "
    "cranial nerves numbness",
    "SOAP / Chart / Progress Notes": "progress doing better cough cold sinus congestion "
    "refill recheck",
    "Obstetrics / Gynecology": "pregnancy gestation uterus cervix ovarian cesarean delivery "
    "menstrual pelvic hysterectomy fetal",
    "Urology": "prostate bladder cystoscopy kidney stone urinary hematuria psa catheter "
    "ureter vasectomy",
    "Discharge Summary": "discharged admission readmission hospitalization",
    "ENT - Otolaryngology": "tonsillectomy sinus nasal septum ear tympanic hearing throat "
    "larynx adenoidectomy otitis",
    "Neurosurgery": "laminectomy craniotomy lumbar cervical disc herniation spinal fusion "
    "dura nerve root decompression",
    "Hematology - Oncology": "chemotherapy cancer lymphoma leukemia anemia platelets tumor "
    "metastatic radiation oncology",
    "Ophthalmology": "cataract lens cornea retina visual acuity intraocular pressure glaucoma "
    "phacoemulsification eyelid",
    "Nephrology": "renal failure creatinine dialysis kidney proteinuria electrolytes potassium "
    "glomerular",
    "Emergency Room Reports": "emergency department triage motor vehicle accident trauma "
    "laceration ambulance",
    "Pediatrics - Neonatal": "infant child newborn pediatric immunizations growth "
    "development mother formula",
    "Pain Management": "epidural steroid injection facet fluoroscopy radiofrequency "
    "nerve block opioid",
    "Psychiatry / Psychology": "depression anxiety mood affect suicidal psychotherapy "
    "bipolar insight judgment",
    "Office Notes": "office visit routine checkup",
    "Podiatry": "foot ankle toe bunion hallux plantar fasciitis nail metatarsal heel",
    "Dermatology": "skin rash lesion mole melanoma eczema psoriasis biopsy dermatitis",
    "Cosmetic / Plastic Surgery": "breast augmentation reduction liposuction "
    "abdominoplasty implant blepharoplasty rhinoplasty",
    "Dentistry": "tooth teeth molar extraction dental gingiva mandible maxilla",
    "Letters": "letter regards correspondence",
    "Physical Medicine - Rehab": "rehabilitation physical therapy strengthening "
    "functional mobility wheelchair",
    "Sleep Medicine": "sleep apnea polysomnography snoring cpap insomnia daytime sleepiness",
    "Endocrinology": "thyroid insulin glucose hemoglobin a1c hypothyroidism adrenal pituitary",
    "Bariatrics": "obesity gastric bypass body mass index lap band bariatric",
    "IME-QME-Work Comp etc.": "work injury disability impairment rating employer industrial claim",
    "Chiropractic": "chiropractic adjustment spinal manipulation subluxation paraspinal",
    "Diets and Nutritions": "diet nutrition calories carbohydrates protein meal dietitian",
    "Rheumatology": "arthritis rheumatoid lupus joint swelling synovitis methotrexate",
    "Speech - Language": "speech language swallowing dysphagia articulation voice aphasia",
    "Autopsy": "autopsy postmortem cause of death decedent organs weighed",
    "Lab Medicine - Pathology": "specimen microscopic gross description histology "
    "margins frozen section",
    "Allergy / Immunology": "allergy allergic rhinitis asthma immunotherapy skin testing "
    "antihistamine",
    "Hospice - Palliative Care": "hospice palliative comfort care end of life dnr goals of care",
}

# Specialties that share vocabulary (a note borrows terms from a group member).
GROUPS: tuple[tuple[str, ...], ...] = (
    ("Neurology", "Neurosurgery", "Sleep Medicine", "Pain Management", "Speech - Language"),
    (
        "Orthopedic",
        "Podiatry",
        "Chiropractic",
        "Physical Medicine - Rehab",
        "Rheumatology",
        "IME-QME-Work Comp etc.",
        "Pain Management",
    ),
    ("Cardiovascular / Pulmonary", "Sleep Medicine", "Allergy / Immunology"),
    ("Gastroenterology", "Bariatrics", "Diets and Nutritions", "Endocrinology"),
    ("Nephrology", "Urology"),
    ("Obstetrics / Gynecology", "Pediatrics - Neonatal"),
    ("ENT - Otolaryngology", "Ophthalmology", "Dentistry", "Allergy / Immunology"),
    ("Hematology - Oncology", "Lab Medicine - Pathology", "Hospice - Palliative Care", "Autopsy"),
    ("Dermatology", "Cosmetic / Plastic Surgery"),
    ("Psychiatry / Psychology", "Neurology"),
)

# Document-type labels: most of their rows copy a specialty's note of that type.
HUBS: dict[str, str] = {
    "Surgery": "operative",
    "Consult - History and Phy.": "consult",
    "Radiology": "imaging",
    "General Medicine": "consult",
    "SOAP / Chart / Progress Notes": "soap",
    "Discharge Summary": "discharge",
    "Emergency Room Reports": "consult",
    "Office Notes": "soap",
    "Letters": "letter",
    "IME-QME-Work Comp etc.": "letter",
}

SURGICAL = frozenset(
    {
        "Surgery",
        "Orthopedic",
        "Neurosurgery",
        "Urology",
        "Gastroenterology",
        "ENT - Otolaryngology",
        "Obstetrics / Gynecology",
        "Ophthalmology",
        "Cosmetic / Plastic Surgery",
        "Bariatrics",
        "Podiatry",
        "Dentistry",
        "Cardiovascular / Pulmonary",
        "Pain Management",
        "Dermatology",
    }
)
