"""The HYPE test suite; its layout mirrors the code."""
