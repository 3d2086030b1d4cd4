"""The shared-vocabulary check: logit-level distillation compares token ids, so both sides must agree on them."""

from __future__ import annotations


def vocab_mismatch(
    student_tokenizer, teacher_tokenizer, student_vocab: int, teacher_vocab: int
) -> str | None:
    """Why the two sides do not share a vocabulary (None when they do).

    Compares the tokenizers' id maps (`get_vocab()`) and the models' output sizes (`lm_head` rows).
    """
    s_cls, t_cls = type(student_tokenizer).__name__, type(teacher_tokenizer).__name__
    sizes = (
        f"student {s_cls} with {len(student_tokenizer)} tokens (lm_head {student_vocab}), "
        f"teacher {t_cls} with {len(teacher_tokenizer)} tokens (lm_head {teacher_vocab})"
    )
    if student_vocab != teacher_vocab:
        return f"output vocabularies differ: {sizes}"
    if student_tokenizer.get_vocab() != teacher_tokenizer.get_vocab():
        return f"tokenizers map tokens to different ids: {sizes}"
    return None


def check_shared_vocab(method: str, student_tokenizer, teacher_tokenizer, student, teacher) -> None:
    """Raise `ValueError` naming both sides when ``method`` cannot compare the two models token by token."""
    s_vocab = student.get_output_embeddings().weight.shape[0]
    t_vocab = teacher.get_output_embeddings().weight.shape[0]
    why = vocab_mismatch(student_tokenizer, teacher_tokenizer, s_vocab, t_vocab)
    if why:
        raise ValueError(
            f"distill.method={method} needs teacher and student to share a tokenizer, but the {why}; "
            "use method=sft (sequence-level, any tokenizers) or a student built on the teacher's tokenizer"
        )
