"""tally: count lines, words and characters."""
