//! `frontline kek`: a new random key-encryption key.

use crate::output;

/// Prints a new key-encryption key (base64 of 32 random bytes).
pub fn run() -> anyhow::Result<()> {
    output::line(frontline_privacy::Kek::generate_base64())
}
