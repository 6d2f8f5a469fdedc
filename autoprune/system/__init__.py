"""What touches the operating system: advisory file locks, sections a stop signal must not
cut in half, database URLs and importing the user's own code.
"""
