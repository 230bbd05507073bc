use super::*;

fn stretch(leak: (f64, f64), master: (f64, f64)) -> Stretch {
    Stretch {
        leak_start_s: leak.0,
        leak_end_s: leak.1,
        master_start_s: master.0,
        master_end_s: master.1,
        anchors: vec![(leak.0, master.0), (leak.1, master.1)],
    }
}

/// Deterministic band-level frames in ±10 dB (splitmix64).
fn frames(seed: u64, count: usize) -> Vec<[f32; BANDS]> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f32 / (1u64 << 53) as f32 * 20.0 - 10.0
    };
    (0..count)
        .map(|_| std::array::from_fn(|_| next()))
        .collect()
}

/// A path carrying only what the gap and loose-end steps read: random
/// ±10 dB frames cost 6.67 against each other, copies 0.
fn path_for_tests(threshold: f32) -> Path {
    Path {
        master: Vec::new(),
        cost: Vec::new(),
        master_frames: 0,
        threshold,
        unrelated_cost: 6.67,
    }
}

#[test]
fn gaps_close_onto_an_insertion_and_keep_the_master_continuous() {
    // Leak: master frames 100–299 (0–4 s), 2 s of foreign frames, then
    // master frames 300–499 (6–10 s). The stretches stop short on both
    // sides of the insertion, as smoothed costs leave them.
    let master = frames(1, 600);
    let mut leak: Vec<_> = master[100..300].to_vec();
    leak.extend(frames(2, 100));
    leak.extend_from_slice(&master[300..500]);
    let features = Features { leak, master };
    let mut stretches = vec![
        stretch((0.0, 3.6), (2.0, 5.6)),
        stretch((6.3, 10.0), (6.3, 10.0)),
    ];
    close_gaps(&mut stretches, &features, 3.3, 10.0, 12.0);
    assert!(
        (stretches[0].leak_end_s - 4.0).abs() <= 0.021,
        "{stretches:?}"
    );
    assert!(
        (stretches[1].leak_start_s - 6.0).abs() <= 0.021,
        "{stretches:?}"
    );
    let (inserted, removed) = edits(&stretches, 10.0);
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(inserted.len(), 1);
    assert!((inserted[0].leak_start_s - 4.0).abs() <= 0.021);
    assert!((inserted[0].leak_end_s - 6.0).abs() <= 0.021);
}

#[test]
fn a_short_piece_before_a_cut_is_found_in_the_master() {
    // Leak: master frames 50–99 (1 s), then a 1 s cut, then master
    // frames 150–449; only the long part was matched.
    let master = frames(3, 600);
    let mut leak: Vec<_> = master[50..100].to_vec();
    leak.extend_from_slice(&master[150..450]);
    let features = Features { leak, master };
    let mut stretches = vec![stretch((1.0, 7.0), (3.0, 9.0))];
    place_unmatched_pieces(&mut stretches, &features, &path_for_tests(3.3), 7.0);
    assert_eq!(stretches.len(), 2, "{stretches:?}");
    assert!(
        (stretches[0].master_start_s - 1.0).abs() <= 0.021,
        "{stretches:?}"
    );
    let (inserted, removed) = edits(&stretches, 7.0);
    assert!(inserted.is_empty(), "{inserted:?}");
    assert_eq!(removed.len(), 1);
    assert!((removed[0].leak_start_s - 1.0).abs() <= 0.021);
    assert!((removed[0].master_end_s - removed[0].master_start_s - 1.0).abs() <= 0.041);

    // Foreign audio in the same place stays an insertion.
    let master = frames(3, 600);
    let mut leak = frames(4, 50);
    leak.extend_from_slice(&master[150..450]);
    let features = Features { leak, master };
    let mut stretches = vec![stretch((1.0, 7.0), (3.0, 9.0))];
    place_unmatched_pieces(&mut stretches, &features, &path_for_tests(3.3), 7.0);
    assert_eq!(stretches.len(), 1, "{stretches:?}");
}

#[test]
fn a_short_piece_between_two_cuts_is_found_between_its_neighbours() {
    // Leak: master frames 0–199 (0–4 s), a 1 s cut, `middle` (0.7 s),
    // another 1 s cut, then master frames 335–534.
    let placed = |middle: &[[f32; BANDS]]| {
        let master = frames(5, 600);
        let mut leak: Vec<_> = master[..200].to_vec();
        leak.extend_from_slice(middle);
        leak.extend_from_slice(&master[335..535]);
        let features = Features { leak, master };
        let mut stretches = vec![
            stretch((0.0, 4.0), (0.0, 4.0)),
            stretch((4.7, 8.7), (6.7, 10.7)),
        ];
        place_unmatched_pieces(&mut stretches, &features, &path_for_tests(3.3), 8.7);
        stretches
    };
    let stretches = placed(&frames(5, 600)[250..285]);
    assert_eq!(stretches.len(), 3, "{stretches:?}");
    assert!(
        (stretches[1].master_start_s - 5.0).abs() <= 0.021,
        "{stretches:?}"
    );
    let (inserted, removed) = edits(&stretches, 8.7);
    assert!(inserted.is_empty(), "{inserted:?}");
    assert_eq!(removed.len(), 2, "{removed:?}");

    // Foreign audio in the same place stays an insertion.
    let stretches = placed(&frames(6, 35));
    assert_eq!(stretches.len(), 2, "{stretches:?}");
}

#[test]
fn a_cut_moves_to_where_the_first_map_stops_explaining_the_leak() {
    // Leak: master frames 0–199 (0–4 s), a 1 s cut, frames 250–449. The
    // first stretch ran 0.5 s past the cut.
    let master = frames(7, 600);
    let mut leak: Vec<_> = master[..200].to_vec();
    leak.extend_from_slice(&master[250..450]);
    let features = Features { leak, master };
    let mut stretches = vec![
        stretch((0.0, 4.5), (0.0, 4.5)),
        stretch((4.5, 8.0), (5.5, 9.0)),
    ];
    settle_edits(&mut stretches, &features, 3.3);
    assert!(
        (stretches[0].leak_end_s - 4.0).abs() <= 0.021,
        "{stretches:?}"
    );
    assert!((stretches[0].master_end_s - 4.0).abs() <= 0.021);
    assert!((stretches[1].leak_start_s - 4.0).abs() <= 0.021);
    assert!((stretches[1].master_start_s - 5.0).abs() <= 0.021);

    // Two stretches that continue each other are not a cut: untouched.
    let mut continuous = vec![
        stretch((0.0, 4.5), (0.0, 4.5)),
        stretch((4.5, 8.0), (4.5, 8.0)),
    ];
    settle_edits(&mut continuous, &features, 3.3);
    assert_eq!(continuous[0].leak_end_s, 4.5);
}

#[test]
fn an_insertion_moves_to_where_the_master_audio_around_it_matches() {
    // Leak: master frames 0–199 (0–4 s), 2 s of foreign frames, then
    // master frames 200–399.
    let master = frames(9, 600);
    let mut leak: Vec<_> = master[..200].to_vec();
    leak.extend(frames(10, 100));
    leak.extend_from_slice(&master[200..400]);
    let features = Features { leak, master };
    let settled = |mut stretches: Vec<Stretch>| {
        settle_edits(&mut stretches, &features, 3.3);
        for (got, want) in [
            (stretches[0].leak_end_s, 4.0),
            (stretches[0].master_end_s, 4.0),
            (stretches[1].leak_start_s, 6.0),
            (stretches[1].master_start_s, 4.0),
        ] {
            assert!((got - want).abs() <= 0.021, "{stretches:?}");
        }
    };
    // The first stretch ran 0.42 s into the foreign audio and the second
    // starts as late: the insertion's length was right, its place not.
    settled(vec![
        stretch((0.0, 4.42), (0.0, 4.42)),
        stretch((6.42, 10.0), (4.42, 8.0)),
    ]);
    // The first stopped 0.3 s short: a gap 2.3 s long, but the maps say
    // 2 s were inserted.
    settled(vec![
        stretch((0.0, 3.7), (0.0, 3.7)),
        stretch((6.0, 10.0), (4.0, 8.0)),
    ]);
}

#[test]
fn an_unmatched_end_after_a_cut_is_placed_before_its_neighbour_grows() {
    // Leak: master frames 0–199 (0–4 s), a 1 s cut, frames 250–329: the
    // last 1.6 s come from after the cut.
    let master = frames(11, 600);
    let mut leak: Vec<_> = master[..200].to_vec();
    leak.extend_from_slice(&master[250..330]);
    let features = Features { leak, master };
    let accept = piece_accept_cost(&path_for_tests(3.3));
    let mut stretches = vec![stretch((0.0, 4.0), (0.0, 4.0))];
    place_end_pieces(&mut stretches, &features, accept, 5.6, Some(1.0));
    assert_eq!(stretches.len(), 2, "{stretches:?}");
    assert!((stretches[1].master_start_s - 5.0).abs() <= 0.021);

    // An end that carries the stretch on is left for it to grow over.
    let features = Features {
        leak: features.master[..280].to_vec(),
        master: features.master,
    };
    let mut stretches = vec![stretch((0.0, 4.0), (0.0, 4.0))];
    place_end_pieces(&mut stretches, &features, accept, 5.6, Some(1.0));
    assert_eq!(stretches.len(), 1, "{stretches:?}");
}

#[test]
fn a_stretch_run_on_past_a_cut_near_an_end_is_split() {
    let master = frames(13, 600);
    let accept = piece_accept_cost(&path_for_tests(3.3));
    let split = |leak: Vec<[f32; BANDS]>, whole: Stretch| {
        let features = Features {
            leak,
            master: master.clone(),
        };
        let mut stretches = vec![whole];
        split_cut_ends(&mut stretches, &features, accept);
        stretches
    };
    // The last 1.6 s come from after a 1 s cut, but one stretch covers
    // the whole leak at the offset before it.
    let mut leak: Vec<_> = master[..300].to_vec();
    leak.extend_from_slice(&master[350..430]);
    let stretches = split(leak, stretch((0.0, 7.6), (0.0, 7.6)));
    assert_eq!(stretches.len(), 2, "{stretches:?}");
    assert!((stretches[1].leak_start_s - 6.0).abs() <= 0.021);
    assert!((stretches[1].master_start_s - 7.0).abs() <= 0.021);

    // The first 1.6 s come from before a 1 s cut.
    let mut leak: Vec<_> = master[100..180].to_vec();
    leak.extend_from_slice(&master[230..530]);
    let stretches = split(leak, stretch((0.0, 7.6), (3.0, 10.6)));
    assert_eq!(stretches.len(), 2, "{stretches:?}");
    assert!((stretches[0].leak_end_s - 1.6).abs() <= 0.021);
    assert!((stretches[0].master_start_s - 2.0).abs() <= 0.021);
    assert!((stretches[1].master_start_s - 4.6).abs() <= 0.021);

    // An uncut leak stays one stretch.
    let stretches = split(master[..380].to_vec(), stretch((0.0, 7.6), (0.0, 7.6)));
    assert_eq!(stretches.len(), 1, "{stretches:?}");
}

#[test]
fn a_cut_between_stretches_is_placed_midway_in_their_gap() {
    let stretches = vec![
        stretch((0.0, 10.0), (100.0, 110.0)),
        stretch((10.3, 20.0), (111.3, 121.0)),
    ];
    let (inserted, removed) = edits(&stretches, 20.0);
    assert!(inserted.is_empty());
    assert_eq!(removed.len(), 1);
    assert!((removed[0].leak_start_s - 10.15).abs() < 1e-9);
}

#[test]
fn maps_run_both_ways_and_edits_follow_from_the_stretches() {
    // 0–12 s plays 100–112, 2 s inserted, then 14–30 plays 113–129 (1 s cut).
    let stretches = vec![
        stretch((0.0, 12.0), (100.0, 112.0)),
        stretch((14.0, 30.0), (113.0, 129.0)),
    ];
    assert_eq!(stretches[1].leak_time(120.0), Some(21.0));
    assert_eq!(stretches[1].master_time(21.0), Some(120.0));
    assert_eq!(stretches[0].leak_time(112.5), None);
    let (inserted, removed) = edits(&stretches, 30.2);
    assert_eq!(
        inserted,
        vec![Edit {
            leak_start_s: 12.0,
            leak_end_s: 14.0,
            master_start_s: 112.0,
            master_end_s: 112.0
        }]
    );
    assert_eq!(
        removed,
        vec![Edit {
            leak_start_s: 14.0,
            leak_end_s: 14.0,
            master_start_s: 112.0,
            master_end_s: 113.0
        }]
    );
}

#[test]
fn long_stretches_are_also_read_in_overlapping_windows() {
    let registration = Registration {
        time_scale: 1.0,
        freq_scale: 1.0,
        correlation: 1.0,
        stretches: vec![
            stretch((0.0, 8.0), (0.0, 8.0)),
            stretch((9.0, 31.0), (9.0, 31.0)),
        ],
        inserted: Vec::new(),
        removed: Vec::new(),
        channel_db: Vec::new(),
        gain_db: 0.0,
        leak_s: 31.0,
    };
    let parts = registration.parts();
    assert_eq!(parts[0], (0.0, 8.0));
    assert_eq!(parts[1], (9.0, 31.0));
    assert_eq!(
        &parts[2..],
        &[(9.0, 19.0), (14.0, 24.0), (19.0, 29.0), (24.0, 31.0)]
    );
    assert!((registration.matched_s() - 30.0).abs() < 1e-9);
}

#[test]
fn split_at_jumps_needs_a_confirmed_jump_and_outliers_go() {
    let mut anchors: Vec<(f64, f64)> = (0..10)
        .map(|k| (k as f64 * 0.2, 100.0 + k as f64 * 0.2))
        .collect();
    anchors.extend((10..20).map(|k| (k as f64 * 0.2, 101.0 + k as f64 * 0.2)));
    // A lone outlier inside the first run.
    anchors[4].1 += 0.4;
    let groups = split_at_jumps(anchors);
    assert_eq!(groups.len(), 2);
    let first = drop_outliers(groups[0].clone());
    assert_eq!(first.len(), 9);
    assert!(first.iter().all(|a| (a.1 - a.0 - 100.0).abs() < 1e-9));
}

/// A piece cut from one place of the master, which registration found as
/// two stretches meeting end to end, is one stretch with no edit; two
/// stretches with a cut between them stay two.
#[test]
fn stretches_that_continue_one_another_are_one() {
    let mut one_piece = vec![
        stretch((0.0, 13.74), (119.99, 133.74)),
        stretch((13.74, 15.0), (133.74, 135.0)),
    ];
    join_continuing(&mut one_piece);
    assert_eq!(one_piece.len(), 1);
    let s = &one_piece[0];
    assert_eq!((s.leak_start_s, s.leak_end_s), (0.0, 15.0));
    assert_eq!((s.master_start_s, s.master_end_s), (119.99, 135.0));
    assert_eq!(s.anchors.len(), 3);
    let (inserted, removed) = edits(&one_piece, 15.0);
    assert!(inserted.is_empty() && removed.is_empty());

    let mut cut = vec![
        stretch((0.0, 10.0), (20.0, 30.0)),
        stretch((10.0, 15.0), (40.0, 45.0)),
    ];
    join_continuing(&mut cut);
    assert_eq!(cut.len(), 2);
    assert_eq!(edits(&cut, 15.0).1.len(), 1);
}

/// The bundled recording `name`, mono at [`RATE`].
fn fixture(name: &str) -> Vec<f32> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    let audio = earmark_audio_io::read(&path).expect("fixture");
    earmark_dsp::resample(&earmark_dsp::downmix(&audio.channels), audio.rate, RATE)
}

#[test]
fn a_reverberant_excerpt_is_placed_by_its_waveform() {
    let master = fixture("speech_en_f_8k_allison_demo-congrats.wav");
    let rate = RATE as f64;
    // The direct sound 4 ms late, then a tail decaying 60 dB in 0.7 s with
    // four times the direct energy (a fixed sign pattern).
    let (delay, len) = ((0.004 * rate) as usize, (0.7 * rate) as usize);
    let mut response = vec![0.0f32; delay + len];
    response[delay] = 1.0;
    let decay = (-3.0 * std::f64::consts::LN_10 / (0.7 * rate)).exp();
    for k in 8..len {
        let sign = if (k * 2_654_435_761) % 7 < 3 {
            -1.0
        } else {
            1.0
        };
        response[delay + k] = (0.12 * sign * decay.powi(k as i32)) as f32;
    }
    let played = earmark_dsp::convolve(&master, &response);
    let leak = &played[8 * RATE as usize..18 * RATE as usize];
    let found = waveform::waveform_registration(&master, leak).expect("placed");
    assert_eq!(found.stretches.len(), 1);
    let s = &found.stretches[0];
    assert!((s.master_start_s - 7.996).abs() < 0.001, "{s:?}");
    assert!((s.leak_end_s - s.leak_start_s - 10.0).abs() < 0.01, "{s:?}");
    // Another recording is placed nowhere.
    let other = fixture("speech_cs_mf_22k_fillets_kitchen_dialogue.wav");
    assert!(waveform::waveform_registration(&master, &other[..10 * RATE as usize]).is_none());
}
