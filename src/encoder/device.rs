//! Choosing the burn device an encoder runs on.
//!
//! `cpu`/`flex` is always available and the default. `ndarray` and `cuda` exist when the
//! crate is built with the cargo features of the same names. CUDA is checked for a driver
//! before a device is created: cudarc panics at first use when `libcuda.so` is missing, and an
//! error naming the cause is better than a panic.
use anyhow::{Result, bail};
use burn::tensor::Device;

/// The default device: burn's flex CPU backend.
pub fn default_device() -> Device {
    Device::flex()
}

/// Parses a device name: `cpu` or `flex` (default), `ndarray`, `cuda` or `cuda:N`.
pub fn select_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    match name.as_str() {
        "" | "cpu" | "flex" => Ok(default_device()),
        "ndarray" => ndarray_device(),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let index = match name.strip_prefix("cuda:") {
                None => 0,
                Some(i) => i.parse::<usize>().map_err(|_| {
                    anyhow::anyhow!("device `{name}`: expected `cuda` or `cuda:N` with N a number")
                })?,
            };
            cuda_device(index)
        }
        other => bail!("unknown device `{other}`: expected cpu, flex, ndarray, cuda or cuda:N"),
    }
}

#[cfg(feature = "ndarray")]
fn ndarray_device() -> Result<Device> {
    #[allow(deprecated)] // burn-ndarray is deprecated upstream; users asked to keep it selectable
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Result<Device> {
    bail!("device `ndarray` needs optical built with `--features ndarray`")
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device> {
    if !cuda_driver_present() {
        bail!(
            "device `cuda:{index}`: no CUDA driver found (libcuda.so is not on the library \
             path); install the NVIDIA driver or use `--device cpu`"
        );
    }
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(index: usize) -> Result<Device> {
    bail!("device `cuda:{index}` needs optical built with `--features cuda`")
}

/// Whether the CUDA driver library can be found where the dynamic loader looks for it.
pub fn cuda_driver_present() -> bool {
    let mut dirs: Vec<std::path::PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    for d in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/local/cuda/lib64",
        "/usr/local/cuda/compat",
        "/usr/local/nvidia/lib64",
        "/usr/lib/wsl/lib",
    ] {
        dirs.push(d.into());
    }
    dirs.iter()
        .any(|d| d.join("libcuda.so.1").exists() || d.join("libcuda.so").exists())
}
