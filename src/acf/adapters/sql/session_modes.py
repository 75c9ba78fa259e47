"""Session mode writes (both dialects). Being written (issue 22, helper H1)."""
