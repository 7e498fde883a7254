"""A deterministic generator of SYNTHETIC medical transcriptions (mtsamples format).

Nothing here comes from patients or from the mtsamples corpus: notes are
assembled from hand-written, specialty-typical phrases plus phrases shared by
every specialty, and a share of notes borrow a phrase from another specialty so
the task is not trivially separable. Every row says it is synthetic (the
description starts with `[SYNTHETIC]`, keywords contain `synthetic`).

The dev stack trains on this; in code promotion, dev never sees production data.

    uv run python -m ml.data.synthetic            # rewrites ml/data/mtsamples_synthetic.csv
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pandas as pd

DEFAULT_CSV = Path(__file__).resolve().parent / "mtsamples_synthetic.csv"
COLUMNS = ("description", "medical_specialty", "sample_name", "transcription", "keywords")
SEED = 20240601
NOTES_PER_SPECIALTY = 60
CROSSOVER_SHARE = 0.35
"""Share of notes that also carry one or two phrases typical of another specialty."""

# Leading spaces as in the public mtsamples CSV; preprocess strips them.
SPECIALTIES: dict[str, tuple[str, ...]] = {
    " Cardiovascular / Pulmonary": (
        "chest pain radiating to the left arm",
        "echocardiogram shows a reduced ejection fraction",
        "atrial fibrillation with rapid ventricular response",
        "coronary angiography revealed a stenosis of the left anterior descending artery",
        "shortness of breath on exertion and orthopnea",
        "bilateral crackles at the lung bases",
        "troponin was mildly elevated",
        "started on a beta blocker and anticoagulation",
        "pulmonary function tests show an obstructive pattern",
        "cardiac catheterization was performed via the right radial artery",
    ),
    " Orthopedic": (
        "fracture of the distal radius",
        "open reduction and internal fixation was performed",
        "range of motion of the knee is limited by pain",
        "MRI shows a tear of the anterior cruciate ligament",
        "arthroscopic meniscectomy of the medial meniscus",
        "total hip arthroplasty without complication",
        "tenderness over the lateral epicondyle",
        "the cast was removed and physical therapy ordered",
        "x-rays show degenerative joint disease of the lumbar spine",
        "rotator cuff repair with suture anchors",
    ),
    " Gastroenterology": (
        "colonoscopy to the cecum with good bowel preparation",
        "a sessile polyp was removed with a snare",
        "upper endoscopy shows erosive esophagitis",
        "abdominal pain in the right upper quadrant after fatty meals",
        "liver function tests are elevated",
        "biopsies were taken from the gastric antrum for Helicobacter pylori",
        "history of gastroesophageal reflux disease on a proton pump inhibitor",
        "hematochezia and iron deficiency anemia",
        "ultrasound shows cholelithiasis without cholecystitis",
        "Crohn disease of the terminal ileum",
    ),
    " Neurology": (
        "sudden onset of left-sided weakness and facial droop",
        "MRI of the brain shows an acute infarct in the right middle cerebral artery territory",
        "electroencephalogram showed generalized spike and wave discharges",
        "migraine with aura, photophobia and nausea",
        "the seizure lasted two minutes with postictal confusion",
        "cranial nerves II through XII are intact",
        "nerve conduction studies are consistent with carpal tunnel syndrome",
        "tremor at rest and cogwheel rigidity suggest Parkinson disease",
        "deep tendon reflexes are brisk with an upgoing plantar response",
        "started on levetiracetam for seizure prophylaxis",
    ),
    " Urology": (
        "hematuria and a mass on CT urogram",
        "cystoscopy revealed a papillary bladder tumor",
        "transurethral resection of the prostate",
        "prostate-specific antigen has risen over the last year",
        "ureteral stone with hydronephrosis",
        "lithotripsy and placement of a double J ureteral stent",
        "urinary frequency, urgency and nocturia",
        "benign prostatic hyperplasia treated with tamsulosin",
        "vasectomy under local anesthesia",
        "urodynamic study shows detrusor overactivity",
    ),
    " Obstetrics / Gynecology": (
        "gravida 2 para 1 at 38 weeks gestation",
        "spontaneous vaginal delivery of a viable infant",
        "low transverse cesarean section",
        "pelvic ultrasound shows a fibroid uterus",
        "abnormal uterine bleeding and dysmenorrhea",
        "laparoscopic bilateral tubal ligation",
        "fetal heart tones are reassuring",
        "Pap smear with atypical squamous cells",
        "postpartum hemorrhage managed with uterotonics",
        "total abdominal hysterectomy and bilateral salpingo-oophorectomy",
    ),
    " Dermatology": (
        "an erythematous scaly plaque on the extensor surfaces",
        "shave biopsy of a pigmented lesion on the back",
        "pathology confirms basal cell carcinoma",
        "Mohs micrographic surgery with clear margins",
        "atopic dermatitis treated with topical corticosteroids",
        "acne vulgaris with comedones and pustules",
        "cryotherapy of actinic keratoses",
        "pruritic rash with excoriations",
        "psoriasis responding to phototherapy",
        "the lesion has irregular borders and color variation",
    ),
    " Ophthalmology": (
        "visual acuity is 20/40 in the right eye",
        "phacoemulsification with posterior chamber intraocular lens implantation",
        "intraocular pressure is elevated, consistent with glaucoma",
        "dilated fundus exam shows diabetic retinopathy",
        "slit lamp examination shows a nuclear sclerotic cataract",
        "retinal detachment repaired with a scleral buckle",
        "floaters and flashes in the left eye",
        "conjunctival injection and discharge",
        "optical coherence tomography shows macular edema",
        "started on timolol drops",
    ),
}

SHARED_PHRASES: tuple[str, ...] = (
    "the patient is a {age}-year-old {sex} who presents for evaluation",
    "past medical history is significant for hypertension and hyperlipidemia",
    "no known drug allergies",
    "vital signs are stable and the patient is afebrile",
    "the patient tolerated the procedure well and was taken to recovery in stable condition",
    "informed consent was obtained after discussing risks and benefits",
    "social history is negative for tobacco use",
    "follow up in the clinic in two weeks",
    "review of systems is otherwise negative",
    "medications were reconciled and reviewed with the patient",
)


def _note(rng: random.Random, specialty: str, others: list[str]) -> str:
    opening = SHARED_PHRASES[0].format(age=rng.randint(18, 90), sex=rng.choice(("male", "female")))
    body = rng.sample(SPECIALTIES[specialty], k=rng.choice((1, 2, 2, 3)))
    body += rng.sample(SHARED_PHRASES[1:], k=3)
    if rng.random() < CROSSOVER_SHARE:
        body += rng.sample(SPECIALTIES[rng.choice(others)], k=rng.choice((1, 2)))
    rng.shuffle(body)
    return ". ".join(s[0].upper() + s[1:] for s in [opening, *body]) + "."


def generate(notes_per_specialty: int = NOTES_PER_SPECIALTY, seed: int = SEED) -> pd.DataFrame:
    """The synthetic dataset; the same arguments always give the same rows."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    rows: list[dict[str, str]] = []
    names = list(SPECIALTIES)
    for specialty in names:
        others = [name for name in names if name != specialty]
        for number in range(1, notes_per_specialty + 1):
            transcription = _note(rng, specialty, others)
            topic = specialty.strip()
            rows.append(
                {
                    "description": f"[SYNTHETIC] {topic} note {number}",
                    "medical_specialty": specialty,
                    "sample_name": f"Synthetic {topic} {number:03d}",
                    "transcription": transcription,
                    "keywords": f"synthetic, {topic.lower()}",
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_csv(path: Path = DEFAULT_CSV, **kwargs: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    generate(**kwargs).to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the synthetic mtsamples-format CSV.")
    parser.add_argument("--output", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--notes-per-specialty", type=int, default=NOTES_PER_SPECIALTY)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    path = write_csv(args.output, notes_per_specialty=args.notes_per_specialty, seed=args.seed)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
