"""The experiments app: studies, raters, trials and everything researchers see."""
