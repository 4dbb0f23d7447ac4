"""What each run file must hold, checked where it is read: a file that fails makes its run ``broken`` with the
reason, never an exception in a page or command."""

from __future__ import annotations

EVAL_NUMBERS = ("test_elbo", "test_recon", "test_kl", "active_units", "latent_dim", "n_test")
EVAL_OPTIONAL = ("iwae_ll", "iwae_k", "knn_accuracy", "knn_k", "recon_mse", "seconds", "time")
# evaluation.json's "disentanglement" scores (vae.analysis.disentanglement computes them)
SCORE_KEYS = ("mig", "beta_vae", "factor_vae", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap")


def evaluation_problem(ev: object) -> str | None:
    """Why ``ev`` is not an evaluation this page can show (None when it is one)."""
    if not isinstance(ev, dict):
        return "it is not a JSON object"
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    for key in EVAL_NUMBERS:
        if not number(ev.get(key)):
            return f"its field {key!r} is not a number"
    for key in EVAL_OPTIONAL:
        if key in ev and not number(ev[key]):
            return f"its field {key!r} is not a number"
    if "disentanglement" in ev:
        scores = ev["disentanglement"]
        if not isinstance(scores, dict) or any(not (scores.get(k) is None or number(scores[k])) for k in SCORE_KEYS):
            return "its disentanglement scores are not numbers"
    for key in ("kl_per_dim", "mean_variance"):
        values = ev.get(key)
        if not (isinstance(values, list) and len(values) == ev["latent_dim"] and all(map(number, values))):
            return f"its field {key!r} is not a list of {ev['latent_dim']} numbers"
    return None
