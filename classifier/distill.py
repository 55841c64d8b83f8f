"""A smaller encoder taught by the fine-tuned one: the student keeps evenly spaced layers of
the teacher (its top layer among them) and learns to give the teacher's sentence vectors.

Labels alone teach a cut-down encoder badly (six layers lost 0.036 of test F1). Matching the
teacher's whole vector, and above all its component along the head's decision direction,
keeps most of what the teacher learned on the same texts.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.encoder import mean_pool
from classifier.encoding import PREFIX, quiet_transformers
from classifier.finetune import run_steps, seed_everything

if TYPE_CHECKING:
    import numpy as np

# Weights of the two losses: one minus the cosine to the teacher's vector (scaled so that it
# and the decision term are of one size), and the squared gap along the head's direction.
COSINE_WEIGHT = 100.0
DECISION_WEIGHT = 1.0


def spaced_layers(teacher_layers: int, keep: int) -> list[int]:
    """`keep` layer indices spread over the teacher's, the first and the last among them."""
    if not 1 <= keep <= teacher_layers:
        raise ValueError(f"keep = {keep}: expected 1..{teacher_layers}")
    if keep == 1:
        return [teacher_layers - 1]
    return sorted({round(i * (teacher_layers - 1) / (keep - 1)) for i in range(keep)})


def distill_encoder(
    teacher_dir: Path,
    texts: Sequence[str],
    targets: np.ndarray,
    direction: np.ndarray,
    out_dir: Path,
    *,
    layers: int,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    max_length: int,
    seed: int,
) -> Path:
    """Train a `layers`-layer copy of the teacher on normalised `texts` towards the teacher's
    unit vectors `targets` (one row per text); save it with the teacher's tokenizer and
    vocabulary record in `out_dir`, and return `out_dir`."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
    seed_everything(seed)  # dropout draws too: the same seed gives the same student
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir, local_files_only=True)
    model = AutoModel.from_pretrained(teacher_dir, local_files_only=True)
    stack = model.encoder.layer
    model.encoder.layer = torch.nn.ModuleList(stack[i] for i in spaced_layers(len(stack), layers))
    model.config.num_hidden_layers = len(model.encoder.layer)
    # The word embeddings stay the teacher's, as in fine-tuning: the rows are shared.
    model.embeddings.word_embeddings.weight.requires_grad_(False)
    goal = torch.from_numpy(targets).float()
    axis = torch.from_numpy(direction).float()

    def loss_of(batch: Any, idx: list[int]) -> Any:
        hidden = model(**batch).last_hidden_state
        vectors = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
        wanted = goal[idx]
        return COSINE_WEIGHT * (1 - (vectors * wanted).sum(-1)).mean() + DECISION_WEIGHT * (
            ((vectors - wanted) @ axis).pow(2).mean()
        )

    run_steps(
        model,
        tokenizer,
        [PREFIX + t for t in texts],
        loss_of,
        epochs=epochs,
        batch_size=batch_size,
        max_length=max_length,
        learning_rate=learning_rate,
        seed=seed,
        label="distilling",
    )
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    record = Path(teacher_dir) / "vocabulary.json"
    if record.is_file():
        shutil.copy(record, out_dir / record.name)
    return out_dir
