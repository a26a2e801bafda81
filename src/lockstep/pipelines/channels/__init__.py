"""Delivery classes, one module each behind ``base``'s protocol; ``registry`` opens them."""
