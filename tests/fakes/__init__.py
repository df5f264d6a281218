"""Stand-ins for the outside services the platform calls, served on 127.0.0.1 for the tests."""
