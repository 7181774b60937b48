"""Call-ins: the push-to-talk floor (`floor`, a pure decider) and the desk that turns its answers
into RPC replies, microphone grants and the caller's audio to the model (`desk`)."""
