//! Time of remembering one answer in the in-memory feedback store.
use std::sync::Arc;
use std::time::Instant;

use recsys::serve::store::MemoryFeedback;

fn main() {
    let f = MemoryFeedback::new(500_000, 50);
    let v: Arc<str> = "default".into();
    let sources = ["history", "als", "category_popular"];
    let n = 400_000u64;
    let start = Instant::now();
    for i in 0..n {
        let user = ((i * 2654435761) % 200_000) as i64;
        let items: Vec<(i64, &'static str)> = (0..10)
            .map(|j| ((i as i64 * 7 + j) % 200_000, sources[(j % 3) as usize]))
            .collect();
        f.remember(user, &v, &items, i as i64, 1_800_000);
    }
    let per = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!("remember: {per:.2} us per answer");
    // What an experiment adds per answer: the variant's tallies.
    let start = Instant::now();
    for i in 0..n {
        let user = ((i * 2654435761) % 200_000) as i64;
        let variant = if user % 2 == 0 { "a" } else { "b" };
        f.tally_answer("bench", variant, user, 10);
    }
    let per = start.elapsed().as_secs_f64() / n as f64 * 1e6;
    println!("tally_answer: {per:.3} us per answer");
}
