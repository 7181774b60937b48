"""The producers' programme: their files in `prompts/` as a model the host, the API and the
command line all stand on.

`model` holds the frozen shapes (station, persona, segments, schedule) and their constants;
`reader` the line-numbered YAML reader every file goes through; `files` and `schedule` read and
check a prompts folder; `media` reads the media library and `music` plans what of it airs;
`director` decides what airs now; `check` is the `radio24 prompts check` command. Pure: file
reading only, no LiveKit, no database, no network.
"""
