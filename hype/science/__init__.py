"""The science core of HYPE: staircase, scores, statistics and simulated raters; no Django."""
