"""What is measured of a trained model: evaluation, map fidelity, diagnoses, disentanglement, posteriors, history."""
