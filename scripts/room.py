#!/usr/bin/env python3
"""The impulse response from a loudspeaker to a microphone in a shoebox room,
by pyroomacoustics' image-source model, for `earmark bench`'s `room` attack.

    room.py RATE_HZ RT60_S DISTANCE_M SEED OUT.wav

The room (4-8 m by 3-6 m by 2.5-3.2 m) and the loudspeaker's place come from
SEED; the walls' absorption gives RT60 (Sabine's formula, inverted by
pyroomacoustics). The microphone is DISTANCE_M away, 20 cm higher. Writes a
32-bit float mono WAV at RATE_HZ.
"""
import sys

import numpy as np
import pyroomacoustics as pra
import soundfile as sf

rate, rt60, distance, seed, out = (
    int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
rng = np.random.default_rng(seed)
room_size = np.array([rng.uniform(4.0, 8.0), rng.uniform(3.0, 6.0), rng.uniform(2.5, 3.2)])
# The source-microphone line must fit with 0.5 m to spare at both walls.
room_size[0] = max(room_size[0], distance + 1.6)
absorption, max_order = pra.inverse_sabine(rt60, room_size)
room = pra.ShoeBox(room_size, fs=rate, materials=pra.Material(absorption),
                   max_order=min(max_order, 40))
speaker = np.array([rng.uniform(0.5, room_size[0] - 0.5 - distance),
                    rng.uniform(0.5, room_size[1] - 0.5), 1.2])
room.add_source(speaker)
room.add_microphone(speaker + np.array([distance, 0.0, 0.2]))
room.compute_rir()
response = np.asarray(room.rir[0][0], dtype=np.float32)
response /= max(float(np.sqrt(np.sum(response ** 2))), 1e-12)
sf.write(out, response, rate, subtype="FLOAT")
