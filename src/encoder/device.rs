//! Choosing the burn device an encoder runs on.
//!
//! `cpu`/`flex` is always available and the default. `ndarray` and `cuda` exist when the
//! crate is built with the cargo features of the same names. CUDA is checked for a driver and a
//! GPU before a device is created ([`cuda_device_count`]): cudarc panics at first use when
//! `libcuda.so` is missing, and an error naming the device and the cause is better than a panic.
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

// burn-ndarray is deprecated upstream in favour of flex; users asked to keep it selectable.
#[cfg(feature = "ndarray")]
#[allow(deprecated)]
fn ndarray_device() -> Result<Device> {
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Result<Device> {
    bail!("device `ndarray` needs optical built with `--features ndarray`")
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device> {
    let count = cuda_device_count().map_err(|why| {
        anyhow::anyhow!("device `cuda:{index}` is not available: {why}; use `--device cpu`")
    })?;
    if index >= count {
        bail!(
            "device `cuda:{index}` is not available: the CUDA driver reports {count} GPU(s) \
             (cuda:0 … cuda:{})",
            count.saturating_sub(1)
        );
    }
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(index: usize) -> Result<Device> {
    bail!(
        "device `cuda:{index}`: optical was built without the cuda feature; build with \
         `--features cuda` (after `bash scripts/setup-cuda.sh`)"
    )
}

/// The number of GPUs the CUDA driver reports, or why there is no usable driver.
///
/// burn's CUDA backend (through cudarc) panics at first use when `libcuda` cannot be loaded, and
/// fails later when it loads but finds no GPU; asking the driver ourselves first (dlopen
/// `libcuda.so.1`, `cuInit`, `cuDeviceGetCount`) turns both into an error. Loading the library
/// is harmless on a machine that has it: cudarc loads the same one afterwards.
#[cfg(unix)]
pub fn cuda_device_count() -> std::result::Result<usize, String> {
    use std::ffi::{CStr, c_int, c_uint};
    type CuInit = unsafe extern "C" fn(c_uint) -> c_int;
    type CuDeviceGetCount = unsafe extern "C" fn(*mut c_int) -> c_int;

    // SAFETY (dlopen, dlerror): valid NUL-terminated names; dlerror returns null or a C string
    // owned by the loader, copied at once. The handle is never closed: a driver library must not
    // be unloaded while it may be in use.
    let open = |name: &CStr| unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    let last_error = || unsafe {
        let e = libc::dlerror();
        if e.is_null() { String::new() } else { CStr::from_ptr(e).to_string_lossy().into_owned() }
    };
    let mut handle = open(c"libcuda.so.1");
    if handle.is_null() {
        // Remember why the driver's own name failed: the fallback's error would only repeat it.
        let why = last_error();
        handle = open(c"libcuda.so");
        if handle.is_null() {
            return Err(format!(
                "no CUDA driver: libcuda.so.1 could not be loaded ({why}); install the NVIDIA driver"
            ));
        }
    }
    // SAFETY: the symbols are looked up in the library just opened; their C signatures are the
    // CUDA driver API's (cuInit(unsigned int), cuDeviceGetCount(int*)), returning CUresult.
    unsafe {
        let init = libc::dlsym(handle, c"cuInit".as_ptr());
        let get_count = libc::dlsym(handle, c"cuDeviceGetCount".as_ptr());
        if init.is_null() || get_count.is_null() {
            return Err("libcuda.so.1 lacks cuInit/cuDeviceGetCount: not a CUDA driver".into());
        }
        let init = std::mem::transmute::<*mut libc::c_void, CuInit>(init);
        let get_count = std::mem::transmute::<*mut libc::c_void, CuDeviceGetCount>(get_count);
        match init(0) {
            0 => {}
            // CUDA_ERROR_NO_DEVICE
            100 => return Err("the CUDA driver is installed but finds no GPU".into()),
            code => return Err(format!("the CUDA driver failed to initialise (cuInit error {code})")),
        }
        let mut count: c_int = 0;
        match get_count(&mut count) {
            0 if count > 0 => Ok(count as usize),
            0 => Err("the CUDA driver is installed but finds no GPU".into()),
            code => Err(format!("the CUDA driver could not count GPUs (error {code})")),
        }
    }
}

#[cfg(not(unix))]
pub fn cuda_device_count() -> std::result::Result<usize, String> {
    Err("looking for a CUDA driver is only implemented on Linux".into())
}

/// Whether a CUDA driver is installed and reports at least one GPU.
pub fn cuda_driver_present() -> bool {
    cuda_device_count().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_select_devices_or_explain_why_not() {
        assert!(select_device("cpu").is_ok());
        assert!(select_device(" Flex ").is_ok());
        let err = select_device("tpu").unwrap_err().to_string();
        assert!(err.contains("tpu") && err.contains("cuda"), "{err}");
        let err = select_device("cuda:x").unwrap_err().to_string();
        assert!(err.contains("cuda:N"), "{err}");
        // Without the feature, or without a driver, CUDA is an error, never a panic.
        if !cfg!(feature = "cuda") {
            let err = select_device("cuda").unwrap_err().to_string();
            assert!(err.contains("`cuda:0`") && err.contains("--features cuda"), "{err}");
        } else if let Err(why) = cuda_device_count() {
            let err = select_device("cuda:0").unwrap_err().to_string();
            assert!(err.contains("`cuda:0`") && err.contains(&why), "{err}");
        }
        if !cfg!(feature = "ndarray") {
            assert!(
                select_device("ndarray")
                    .unwrap_err()
                    .to_string()
                    .contains("--features ndarray")
            );
        }
    }
}
