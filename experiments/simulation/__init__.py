"""Simulated raters over the real protocol, for dry runs, load tests and the demo: the plan
(who to simulate, with which observers), the client (each simulated rater opens the study
link and answers over the websocket) and an ASGI server in a thread to run them against."""
