//! The key store on a real nats-server: keys are created once and shared, stored
//! only wrapped, destroyed for good, and a wrong key-encryption key is refused at
//! open.
#![allow(clippy::unwrap_used)]

use async_nats::jetstream;
use frontline_privacy::{Kek, KeyError, KeyStore, Lookup, NatsKeyStore, open, seal};

fn live(lookup: Lookup) -> frontline_privacy::DataKey {
    match lookup {
        Lookup::Live(key) => key,
        other => panic!("expected a live key, got {other:?}"),
    }
}
use frontline_testkit::NatsServer;
use futures::TryStreamExt as _;
use uuid::Uuid;

async fn server() -> (NatsServer, jetstream::Context) {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    (server, jetstream::new(client))
}

/// Every stored byte of the bucket's stream, raw.
async fn raw_bytes(js: &jetstream::Context, bucket: &str) -> Vec<u8> {
    let stream = js.get_stream(format!("KV_{bucket}")).await.unwrap();
    let last = stream.clone().info().await.unwrap().state.last_sequence;
    let mut all = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            all.extend_from_slice(&m.payload);
            all.extend_from_slice(m.subject.as_bytes());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_once_kept_wrapped_and_destroyed_for_good() {
    let (_server, js) = server().await;
    let kek = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let store = NatsKeyStore::open(&js, "T_KEYS", 1, kek.clone(), None)
        .await
        .unwrap();
    let customer = Uuid::new_v4();

    // Concurrent first uses share one key.
    let keys = futures::future::try_join_all((0..8).map(|_| store.key_for(&customer)))
        .await
        .unwrap();
    let sealed = seal(keys[0].as_ref().unwrap(), b"ana@example.com", b"evt/email");
    for key in &keys {
        assert_eq!(
            open(key.as_ref().unwrap(), &sealed, b"evt/email").unwrap(),
            b"ana@example.com"
        );
    }
    // Reopened with the same KEK, the key is the same.
    let again = NatsKeyStore::open(&js, "T_KEYS", 1, kek, None)
        .await
        .unwrap();
    let key = live(again.lookup(&customer).await.unwrap());
    assert_eq!(
        open(&key, &sealed, b"evt/email").unwrap(),
        b"ana@example.com"
    );
    assert!(matches!(
        again.lookup(&Uuid::new_v4()).await.unwrap(),
        Lookup::Missing
    ));

    // Destroyed: gone, not recreated, and the wrapped key is in no stored byte.
    let wrapped = js
        .get_key_value("T_KEYS")
        .await
        .unwrap()
        .get(format!("customer.{customer}"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw_bytes(&js, "T_KEYS")
            .await
            .windows(wrapped.len())
            .any(|w| w == &wrapped[..])
    );
    store.destroy(&customer).await.unwrap();
    store.destroy(&customer).await.unwrap();
    assert!(matches!(
        store.lookup(&customer).await.unwrap(),
        Lookup::Forgotten
    ));
    // Another process that had the key cached drops it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(matches!(
        again.lookup(&customer).await.unwrap(),
        Lookup::Forgotten
    ));
    assert!(store.key_for(&customer).await.unwrap().is_none());
    let history: Vec<_> = store_history(&js, &customer).await;
    assert!(
        history.iter().all(|v| v == b"forgotten"),
        "no wrapped copy is left: {history:?}"
    );
    let raw = raw_bytes(&js, "T_KEYS").await;
    assert!(!raw.windows(wrapped.len()).any(|w| w == &wrapped[..]));

    // An entry deleted or purged by other means is not absent: no new key is made.
    let bucket = js.get_key_value("T_KEYS").await.unwrap();
    let purged = Uuid::new_v4();
    store.key_for(&purged).await.unwrap().unwrap();
    bucket.purge(format!("customer.{purged}")).await.unwrap();
    let fresh = NatsKeyStore::open(
        &js,
        "T_KEYS",
        1,
        Kek::from_base64(&Kek::generate_base64()).unwrap(),
        None,
    )
    .await;
    assert!(fresh.is_err(), "another KEK is still refused");
    assert!(store.key_for(&purged).await.unwrap().is_none());
    assert!(matches!(
        store.lookup(&purged).await.unwrap(),
        Lookup::Forgotten
    ));
}

async fn store_history(js: &jetstream::Context, customer: &Uuid) -> Vec<Vec<u8>> {
    let kv = js.get_key_value("T_KEYS").await.unwrap();
    kv.history(format!("customer.{customer}"))
        .await
        .unwrap()
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.value.to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_kek_is_refused_when_the_store_opens() {
    let (_server, js) = server().await;
    let kek = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let store = NatsKeyStore::open(&js, "T_KEYS", 1, kek, None)
        .await
        .unwrap();
    store.key_for(&Uuid::new_v4()).await.unwrap();
    let other = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let err = NatsKeyStore::open(&js, "T_KEYS", 1, other, None)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongKek(_)), "{err}");
    assert!(err.to_string().contains("FRONTLINE_KEK"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_holds_no_data_key_in_the_clear() {
    let (_server, js) = server().await;
    let kek = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let store = NatsKeyStore::open(&js, "T_KEYS", 1, kek, None)
        .await
        .unwrap();
    let customer = Uuid::new_v4();
    let key = store.key_for(&customer).await.unwrap().unwrap();
    // A field sealed with the key opens with the key read back, and the raw
    // bucket bytes do not contain the plaintext of anything sealed with it.
    let sealed = seal(&key, b"secret-marker-123", b"a");
    assert_eq!(
        open(&live(store.lookup(&customer).await.unwrap()), &sealed, b"a").unwrap(),
        b"secret-marker-123"
    );
    let raw = raw_bytes(&js, "T_KEYS").await;
    assert!(!raw.windows(17).any(|w| w == b"secret-marker-123"));
    assert!(!raw.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_secrets_are_made_once_and_kept() {
    let (_server, js) = server().await;
    let kek = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let store = NatsKeyStore::open(&js, "T_KEYS", 1, kek.clone(), None)
        .await
        .unwrap();
    let acme = store.tenant_secret("acme").await.unwrap();
    assert_eq!(acme, store.tenant_secret("acme").await.unwrap());
    assert_ne!(acme, store.tenant_secret("globex").await.unwrap());
    let again = NatsKeyStore::open(&js, "T_KEYS", 1, kek, None)
        .await
        .unwrap();
    assert_eq!(acme, again.tenant_secret("acme").await.unwrap());
}

/// Rotation: services run with the new KEK and the previous one, `rotate` wraps
/// every key again, and from then on the new KEK alone opens the store — the same
/// keys, so everything sealed before still opens — and the old one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_encryption_key_rotates_without_losing_a_key() {
    let (_server, js) = server().await;
    let old = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let new = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let before = NatsKeyStore::open(&js, "T_KEYS", 1, old.clone(), None)
        .await
        .unwrap();
    let (kept, gone) = (Uuid::new_v4(), Uuid::new_v4());
    let key = before.key_for(&kept).await.unwrap().unwrap();
    before.key_for(&gone).await.unwrap();
    before.destroy(&gone).await.unwrap();
    let secret = before.tenant_secret("acme").await.unwrap();
    let sealed = seal(&key, b"ana@example.com", b"e/email");

    // The new KEK alone does not open the store yet.
    let err = NatsKeyStore::open(&js, "T_KEYS", 1, new.clone(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongKek(_)), "{err}");
    // With the previous one beside it, it does, and a new key is wrapped with it.
    let during = NatsKeyStore::open(&js, "T_KEYS", 1, new.clone(), Some(old.clone()))
        .await
        .unwrap();
    let fresh = Uuid::new_v4();
    during.key_for(&fresh).await.unwrap().unwrap();
    let rotation = during.rotate().await.unwrap();
    // The check entry, the kept key and the tenant secret; the fresh key already was.
    assert_eq!(
        (rotation.rewrapped, rotation.current, rotation.destroyed),
        (3, 1, 1),
        "{rotation:?}"
    );
    assert_eq!(during.rotate().await.unwrap().rewrapped, 0, "repeatable");

    let after = NatsKeyStore::open(&js, "T_KEYS", 1, new, None)
        .await
        .unwrap();
    let key = live(after.lookup(&kept).await.unwrap());
    assert_eq!(open(&key, &sealed, b"e/email").unwrap(), b"ana@example.com");
    assert!(matches!(
        after.lookup(&gone).await.unwrap(),
        Lookup::Forgotten
    ));
    assert_eq!(after.tenant_secret("acme").await.unwrap(), secret);
    let err = NatsKeyStore::open(&js, "T_KEYS", 1, old, None)
        .await
        .unwrap_err();
    assert!(matches!(err, KeyError::WrongKek(_)), "{err}");
}

/// A process that had a key cached sees it destroyed by another process also after
/// NATS restarted under both (the watch that drops cached keys comes back, and
/// nothing is cached while it is away).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_key_is_seen_after_nats_restarts() {
    let (mut server, js) = server().await;
    let kek = Kek::from_base64(&Kek::generate_base64()).unwrap();
    let reader = NatsKeyStore::open(&js, "T_KEYS", 1, kek.clone(), None)
        .await
        .unwrap();
    let customer = Uuid::new_v4();
    reader.key_for(&customer).await.unwrap().unwrap();
    live(reader.lookup(&customer).await.unwrap());

    let restarted = tokio::task::spawn_blocking(move || {
        server.kill().unwrap();
        server.restart().unwrap();
        server
    })
    .await
    .unwrap();
    let other = jetstream::new(async_nats::connect(restarted.url()).await.unwrap());
    let forgetter = NatsKeyStore::open(&other, "T_KEYS", 1, kek, None)
        .await
        .unwrap();
    forgetter.destroy(&customer).await.unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match reader.lookup(&customer).await {
            Ok(Lookup::Forgotten) => break,
            // Still reconnecting, or not yet told.
            Ok(_) | Err(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => panic!("the reader still sees the key: {other:?}"),
        }
    }
}
