//! `Config::load` on arbitrary `config.toml` text.
//!
//! Every command starts by loading the config, so a bad one must be a one-line
//! error naming the key, never a panic. A config that loads must also survive
//! what training does with it: the bundle stores it as JSON (in
//! `manifest.json`) and as TOML (`config.toml`), and both must read back as
//! the same settings — a value that validates but cannot be written back
//! (a non-finite number, say) would make every bundle trained with it
//! unloadable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recsys::config::Config;

fuzz_target!(|data: &[u8]| {
    let path = recsys_fuzz::scratch_file("config.toml", data);
    let loaded = Config::load(&path);
    recsys_fuzz::show(&loaded);
    let Ok(mut config) = loaded else {
        return;
    };
    // Never written to a bundle (it is a secret).
    config.serve.admin_token = None;
    let json = serde_json::to_vec(&config).expect("a loaded config serialises to JSON");
    let back: Config =
        serde_json::from_slice(&json).expect("the manifest's JSON config reads back");
    assert_eq!(back, config, "JSON round trip");
    back.validate()
        .expect("the manifest's config validates again");
    let text = toml::to_string_pretty(&config).expect("a loaded config serialises to TOML");
    let back: Config = toml::from_str(&text).expect("the bundle's config.toml reads back");
    assert_eq!(back, config, "TOML round trip");
});
