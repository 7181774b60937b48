"""The host's sound: the one track it transmits (`transmitter`), the live chain that levels and
limits it (`chain`), files made ready for air (`prepare`) and the meters (`measure`)."""
