"""Is the latent space collapsing? A reading of a run's epoch records (``metrics.jsonl``), in one sentence.

Posterior collapse: the decoder learns to ignore z, so q(z|x) falls back onto the prior for most (or all)
dimensions. Its signs are few active units (Burda et al. 2015: dimensions whose posterior mean varies across
the data) and a total KL near zero while the reconstruction stops improving.
"""

from __future__ import annotations

ACTIVE_FRACTION = 0.1  # at most this share of the dimensions active (and at most 1 for tiny latents)
KL_NEAR_ZERO = 0.5  # nats per item, summed over dimensions
STALL_EPOCHS = 3  # the reconstruction's change over this many epochs ...
STALL_FRACTION = 0.005  # ... under this share of its value: it stopped improving
REMEDIES = (
    "Try a KL warm-up (e.g. over 10 epochs), a smaller β, free bits (e.g. 0.5 nats per dimension), a weaker decoder "
    "or a lower learning rate."
)


def collapse_warning(epochs: list[dict], latent_dim: int) -> str | None:
    """A sentence when the latest epoch shows a collapsing latent space, with likely causes; None otherwise."""
    recorded = [e for e in epochs if isinstance(e.get("active_units"), int) and isinstance(e.get("test_kl"), float)]
    if not recorded:
        return None
    last = recorded[-1]
    active, kl = last["active_units"], last["test_kl"]
    few = active <= max(1, int(ACTIVE_FRACTION * latent_dim)) and latent_dim > 1
    recent = [e.get("test_recon") for e in recorded[-STALL_EPOCHS - 1 :]]
    stalled = (
        len(recent) > STALL_EPOCHS
        and all(isinstance(r, float) for r in recent)
        and abs(recent[0] - recent[-1]) <= STALL_FRACTION * abs(recent[0])
    )
    if not few and not (kl < KL_NEAR_ZERO and stalled):
        return None
    return (
        f"The latent space is collapsing: {active} of {latent_dim} dimensions carry information about the input "
        f"(total KL {kl:.2f} nats), so the decoder is learning to ignore z. {REMEDIES}"
    )


def run_alarm(status: dict, epochs: list[dict]) -> tuple[str, str] | None:
    """("diverged" | "collapsed", the sentence) when the run's loss diverged or its latent space collapsed: what
    the Train page says at its top, the sidebar beside the state and the Runs table in a column; else None."""
    message = status.get("message") or ""
    if status.get("state") == "failed" and message.startswith("Training diverged"):
        return "diverged", message
    sizes = [len(e["test_kl_per_dim"]) for e in epochs if isinstance(e.get("test_kl_per_dim"), list)]
    if sizes and (warning := collapse_warning(epochs, sizes[-1])):
        return "collapsed", warning
    return None
