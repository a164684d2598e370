"""Spatial semantic segmentation of sound scenes (DCASE2025 Task 4, "S5").

From a first-order Ambisonics soundscape, tag which sound classes are present and separate one mono signal per
detected class. The branch has its own stages (synthesis, tagger and separator training, inference, CA-SDRi
scoring, report) because its data are waveforms in and waveforms out, not frame labels; it shares the room
format, the I/O helpers and the resumable training state with the SELD stages.
"""
