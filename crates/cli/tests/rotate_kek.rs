//! `frontline rotate-kek` against a real nats-server: keys wrapped with the old
//! key-encryption key open with the new one alone afterwards.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use frontline_privacy::{Kek, KeyStore, Lookup, NatsKeyStore, open, seal};
use frontline_testkit::NatsServer;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_frontline");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_kek_rewraps_every_key_for_the_new_kek() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let (old, new) = (Kek::generate_base64(), Kek::generate_base64());
    let store = NatsKeyStore::open(&js, "ROT_KEYS", 1, Kek::from_base64(&old).unwrap(), None)
        .await
        .unwrap();
    let customer = Uuid::new_v4();
    let key = store.key_for(&customer).await.unwrap().unwrap();
    let sealed = seal(&key, b"marker", b"a");

    let run = |previous: &str| {
        Command::new(BIN)
            .arg("rotate-kek")
            .env("NATS_URL", server.url())
            .env("FRONTLINE_STREAM", "ROT")
            .env("FRONTLINE_KEK", &new)
            .env("FRONTLINE_KEK_PREVIOUS", previous)
            .env_remove("FRONTLINE_KEK_FILE")
            .env_remove("FRONTLINE_KEK_PREVIOUS_FILE")
            .output()
            .unwrap()
    };
    let out = run(&old);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 wrapped with the new key"), "{stdout}");
    // Without the previous key it refuses, saying what is missing.
    let out = Command::new(BIN)
        .arg("rotate-kek")
        .env("NATS_URL", server.url())
        .env("FRONTLINE_KEK", &new)
        .env_remove("FRONTLINE_KEK_PREVIOUS")
        .env_remove("FRONTLINE_KEK_PREVIOUS_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FRONTLINE_KEK_PREVIOUS"));

    let after = NatsKeyStore::open(&js, "ROT_KEYS", 1, Kek::from_base64(&new).unwrap(), None)
        .await
        .unwrap();
    let Lookup::Live(key) = after.lookup(&customer).await.unwrap() else {
        panic!("the key survives rotation");
    };
    assert_eq!(open(&key, &sealed, b"a").unwrap(), b"marker");
}
