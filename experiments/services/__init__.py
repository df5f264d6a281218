"""Services: plain typed functions that do the work behind views and consumers."""
