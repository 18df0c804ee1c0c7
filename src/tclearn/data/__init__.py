"""Data sets, their split across partners, and anonymised data ids.

* `dataset`: `Dataset` (aligned x/y tensors with canonical per-sample bytes).
* `phantoms`: CT-like pelvic phantoms with a bladder, per-scanner profiles.
* `digits`: scikit-learn's 8×8 handwritten digits.
* `nifti`: a user's folder in the Medical Segmentation Decathlon layout.
* `segmentation`: the two-channel (image + one labelled slice) samples.
* `split`: IID / non-IID splits across partners, plus the global test set G.
* `ids`: keyed-hash data ids, their Merkle root, duplicate detection.
* `pool`: a partner's pool of samples with ids and a record of used ones.
"""

from tclearn.data.dataset import Dataset, concat_datasets
from tclearn.data.digits import DIGITS_CLASSES, load_digits_dataset
from tclearn.data.ids import EMPTY_ROOT, check_data_id, data_id, dataset_ids, find_duplicates, merkle_root
from tclearn.data.nifti import find_cases, load_decathlon
from tclearn.data.phantoms import (
    DEFAULT_PHANTOM_SHAPE,
    SCANNER_PROFILES,
    ScannerProfile,
    apply_scanner,
    make_phantom,
    partner_profile,
    phantom_coalition,
    phantom_dataset,
    phantom_test_set,
    phantom_hu,
)
from tclearn.data.pool import DataPool
from tclearn.data.segmentation import central_slice_index, guidance_channel, segmentation_dataset
from tclearn.data.split import SPLIT_MODES, CoalitionData, split_dataset

__all__ = [
    "Dataset",
    "concat_datasets",
    "DIGITS_CLASSES",
    "load_digits_dataset",
    "EMPTY_ROOT",
    "check_data_id",
    "data_id",
    "dataset_ids",
    "find_duplicates",
    "merkle_root",
    "find_cases",
    "load_decathlon",
    "DEFAULT_PHANTOM_SHAPE",
    "SCANNER_PROFILES",
    "ScannerProfile",
    "apply_scanner",
    "make_phantom",
    "partner_profile",
    "phantom_coalition",
    "phantom_dataset",
    "phantom_test_set",
    "phantom_hu",
    "DataPool",
    "central_slice_index",
    "guidance_channel",
    "segmentation_dataset",
    "SPLIT_MODES",
    "CoalitionData",
    "split_dataset",
]
