"""Per-download watermarks (level C): keyed spread-spectrum fingerprints in the weights, embedded on the copy
a member downloads from the vault, journaled, and traced back from a leaked model.

`fingerprint` holds the maths (pure, no I/O); `custody` the vault side (download, key storage, tracing).
"""

from tclearn.watermark.custody import (
    KEY_KIND, WATERMARK_ACTION, Receipt, Suspicion, TraceReport, Tracer, clean_candidate, download_watermarked,
    watermark_entries,
)
from tclearn.watermark.fingerprint import (
    DEFAULT_ALPHA, DEFAULT_FALSE_ACCUSATION, SCHEME, Detector, embed, false_accusation_bound, key_id, threshold_for,
)

__all__ = ["KEY_KIND", "WATERMARK_ACTION", "Receipt", "Suspicion", "TraceReport", "Tracer", "clean_candidate",
           "download_watermarked", "watermark_entries", "DEFAULT_ALPHA", "DEFAULT_FALSE_ACCUSATION", "SCHEME",
           "Detector", "embed", "false_accusation_bound", "key_id", "threshold_for"]
