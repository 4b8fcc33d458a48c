"""DSPy signatures, one per LM call; import them only as ``persona_gen.signatures``."""

from persona_gen.signatures.bench import (
    AnswerForPersona,
    AnswerFromPersonaSummary,
    CritiqueBenchAnswer,
    SummarizePersona,
)
from persona_gen.signatures.enrich import (
    DETAIL_GUIDE,
    CheckPersonaConsistency,
    ConsistencyVerdict,
    Idiosyncrasies,
    WritePersonaDetails,
)
from persona_gen.signatures.feedback import AnswerQuestion, CritiqueInVoice, PersonaCritique, ReviseForPersona
from persona_gen.signatures.judge import JudgeInVoice
from persona_gen.signatures.questions import ControversyVerdict, DraftQuestions, JudgeControversy

__all__ = [
    "DETAIL_GUIDE",
    "AnswerForPersona",
    "AnswerFromPersonaSummary",
    "AnswerQuestion",
    "CheckPersonaConsistency",
    "ConsistencyVerdict",
    "ControversyVerdict",
    "CritiqueBenchAnswer",
    "CritiqueInVoice",
    "DraftQuestions",
    "Idiosyncrasies",
    "JudgeControversy",
    "JudgeInVoice",
    "PersonaCritique",
    "ReviseForPersona",
    "SummarizePersona",
    "WritePersonaDetails",
]
