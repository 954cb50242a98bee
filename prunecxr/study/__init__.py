"""The reader study (paper Sec. 2.3), runnable: blinded packets, offline forms, analysis.

``make_packet`` writes per-reader offline HTML forms and a private key; readers' answer CSVs
come back through ``load_responses`` (strict validation, tidy table) into
``prunecxr.analysis.readers.reader_study_stats``; ``ground_truth_comparison`` runs the same
statistics on the phantom's known label noise, quality and difficulty.
"""

from .packet import (QUESTIONS, RESPONSE_COLUMNS, Design, StudyError, make_packet, packet_summary,
                     read_key)
from .responses import (TIDY_COLUMNS, ground_truth_comparison, load_responses, responses_parameter,
                        responses_status, truth_table)

__all__ = [
    "QUESTIONS", "RESPONSE_COLUMNS", "TIDY_COLUMNS", "Design", "StudyError",
    "make_packet", "packet_summary", "read_key", "load_responses", "responses_parameter",
    "responses_status", "ground_truth_comparison", "truth_table",
]
