"""Monthly venue reports: queries, metrics, tips and rendering (to come)."""
