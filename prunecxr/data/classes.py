"""Class lists of the two long-tailed CXR benchmarks, in the reference code's order."""

NIH_CXR_LT_CLASSES: tuple[str, ...] = (
    "No Finding", "Infiltration", "Effusion", "Atelectasis", "Nodule", "Mass",
    "Consolidation", "Pneumothorax", "Pleural Thickening", "Cardiomegaly", "Emphysema",
    "Edema", "Fibrosis", "Subcutaneous Emphysema", "Pneumonia", "Tortuous Aorta",
    "Calcification of the Aorta", "Pneumoperitoneum", "Hernia", "Pneumomediastinum",
)

MIMIC_CXR_LT_CLASSES: tuple[str, ...] = (
    "Support Devices", "Lung Opacity", "Cardiomegaly", "Pleural Effusion", "Atelectasis",
    "Pneumonia", "Edema", "No Finding", "Enlarged Cardiomediastinum", "Consolidation",
    "Pneumothorax", "Fracture", "Calcification of the Aorta", "Tortuous Aorta",
    "Subcutaneous Emphysema", "Lung Lesion", "Pneumomediastinum", "Pneumoperitoneum",
    "Pleural Other",
)

NO_FINDING = "No Finding"
