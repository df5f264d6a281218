"""How raters arrive at a study: the study link and the parameters crowd platforms add to it."""
