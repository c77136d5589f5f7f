"""Qt item models and the folder review session (no widgets here)."""
