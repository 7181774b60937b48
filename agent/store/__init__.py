"""What the host keeps outside itself: the as-aired log and post claims in Postgres (`aired`,
`posts`, `people`), the post memory (`memory`), and in Redis the live board (`board`) and the
heartbeat and worker registration the keeper reads (`heartbeat`)."""
