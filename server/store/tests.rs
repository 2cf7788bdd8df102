//! The journal's bounds, reads, time search and retention.
use super::*;

fn entry(seq: u64, at: i64) -> Entry {
    Entry {
        seq,
        recorded_at: at,
        data: seq.to_le_bytes().to_vec(),
    }
}

fn append(store: &Store, seqs: std::ops::Range<u64>) {
    let mut b = Batch::default();
    for s in seqs {
        b.event(entry(s, s as i64 * 10));
    }
    store.write_all(&[b]).unwrap();
}

#[test]
fn journal_bounds_read_search_prune() {
    let dir = std::env::temp_dir().join(format!("berth-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.redb");
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&path).unwrap();
    let empty = Bounds {
        oldest: 1,
        next: 1,
        pruned_until: 0,
    };
    assert_eq!(store.bounds().unwrap(), empty);
    append(&store, 1..101);
    assert_eq!(
        store.read(0, 3).unwrap(),
        vec![entry(1, 10), entry(2, 20), entry(3, 30)]
    );
    assert_eq!(store.read(99, 10).unwrap(), vec![entry(100, 1000)]);
    assert_eq!(store.first_at_or_after(0).unwrap(), 1);
    assert_eq!(store.first_at_or_after(455).unwrap(), 46);
    assert_eq!(store.first_at_or_after(460).unwrap(), 46);
    assert_eq!(store.first_at_or_after(5000).unwrap(), 101);
    // Keep 60 by count, in chunks of 25.
    assert_eq!(store.prune(60, 0, 25).unwrap(), 25);
    assert_eq!(store.prune(60, 0, 25).unwrap(), 15);
    assert_eq!(store.prune(60, 0, 25).unwrap(), 0);
    let b = store.bounds().unwrap();
    assert_eq!((b.oldest, b.next, b.pruned_until), (41, 101, 400));
    // By age: everything recorded before 705.
    assert_eq!(store.prune(1000, 705, 1000).unwrap(), 30);
    // Everything: next_seq stays.
    assert_eq!(store.prune(0, 0, 1000).unwrap(), 30);
    let b = store.bounds().unwrap();
    assert_eq!((b.oldest, b.next, b.pruned_until), (101, 101, 1000));
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.bounds().unwrap().next, 101);
    let _ = std::fs::remove_dir_all(&dir);
}
