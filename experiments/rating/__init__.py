"""The rater's side of a study, in protocol order: the pages, the one-shot images, the
websocket's messages and consumer, the session's requests (hello, presented, answer), the
blocks of images and the session's lifecycle."""
