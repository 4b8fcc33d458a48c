"""Human role-play annotation: export tasks, a local labeling page, label import, agreement with judges."""

from persona_gen.annotate.agreement import (
    agreement_report,
    feedback_rows,
    human_vs_human,
    kappa_change,
    kappa_vs_majority,
)
from persona_gen.annotate.errors import AnnotationError
from persona_gen.annotate.export import ExportResult, TaskSet, export_tasks, load_feedback, read_tasks
from persona_gen.annotate.labels import build_items, check_label, read_items, read_labels
from persona_gen.annotate.records import AnnotationTask, Label, LabeledItem, Rating, TaskKey, majority
from persona_gen.annotate.server import AnnotationApp, make_server

__all__ = [
    "AnnotationApp",
    "AnnotationError",
    "AnnotationTask",
    "ExportResult",
    "Label",
    "LabeledItem",
    "Rating",
    "TaskKey",
    "TaskSet",
    "agreement_report",
    "build_items",
    "check_label",
    "export_tasks",
    "feedback_rows",
    "human_vs_human",
    "kappa_change",
    "kappa_vs_majority",
    "load_feedback",
    "majority",
    "make_server",
    "read_items",
    "read_labels",
    "read_tasks",
]
