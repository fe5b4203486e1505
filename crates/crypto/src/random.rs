use eagate_domain::UnexpectedError;
use rand_core::TryRng;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], UnexpectedError> {
    let mut bytes = [0u8; N];
    getrandom::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| UnexpectedError::msg(format!("operating system RNG failed: {e}")))?;
    Ok(bytes)
}
