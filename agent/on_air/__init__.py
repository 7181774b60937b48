"""On air: the loop that sequences the air (`loop`), music and items (`playout`), the as-aired
record (`record`), who is listening (`presence`), the offline voice's lines (`lines`), what
pages see (`display`) and the producers' files, live (`prompt_watcher`)."""
