//! Device selection: `auto | cpu | cuda[:N] | metal`, with a clear error when a device was asked
//! for that this build or this machine does not have.

use crate::error::{Error, Result};
use candle_core::Device;

/// Parses a device name and opens it. `auto` picks CUDA, then Metal, then the CPU.
pub fn open(name: &str) -> Result<Device> {
    let name = name.trim();
    match name {
        "" | "cpu" => Ok(Device::Cpu),
        "auto" => Ok(auto()),
        "metal" => open_metal(),
        _ => {
            if let Some(rest) = name.strip_prefix("cuda") {
                let ordinal = match rest.strip_prefix(':') {
                    Some(n) => n.parse::<usize>().map_err(|_| {
                        Error::Device(format!(
                            "bad device \"{name}\": write cuda or cuda:N with N a GPU number"
                        ))
                    })?,
                    None if rest.is_empty() => 0,
                    None => return Err(unknown(name)),
                };
                open_cuda(ordinal)
            } else {
                Err(unknown(name))
            }
        }
    }
}

/// A short name for a device, as shown in events and reports.
pub fn label(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// The dtype frozen backbones run in on `device` when the project says `precision = "auto"`:
/// bf16 on GPUs (half the memory traffic, tensor cores), f32 on the CPU (no fast bf16 there).
pub fn auto_precision(device: &Device) -> candle_core::DType {
    match device {
        Device::Cpu => candle_core::DType::F32,
        Device::Cuda(_) | Device::Metal(_) => candle_core::DType::BF16,
    }
}

/// Parses a `precision` parameter (`auto`, `f32`, `bf16`, `f16`) for `device`.
pub fn precision(name: &str, device: &Device) -> Result<candle_core::DType> {
    use candle_core::DType;
    match name {
        "auto" | "" => Ok(auto_precision(device)),
        "f32" => Ok(DType::F32),
        "bf16" if device.is_cpu() => Err(Error::Device(
            "bf16 runs only on a GPU in this build; use precision = \"f32\" or \"auto\" on the CPU"
                .into(),
        )),
        "bf16" => Ok(DType::BF16),
        "f16" if device.is_cpu() => Err(Error::Device(
            "f16 runs only on a GPU in this build; use precision = \"f32\" or \"auto\" on the CPU"
                .into(),
        )),
        "f16" => Ok(DType::F16),
        other => Err(Error::Device(format!(
            "unknown precision \"{other}\"; use auto, f32, bf16 or f16"
        ))),
    }
}

fn unknown(name: &str) -> Error {
    Error::Device(format!(
        "unknown device \"{name}\"; use auto, cpu, cuda, cuda:N or metal"
    ))
}

fn auto() -> Device {
    if cfg!(feature = "cuda")
        && let Ok(d) = Device::new_cuda(0)
    {
        return d;
    }
    if cfg!(feature = "metal")
        && let Ok(d) = Device::new_metal(0)
    {
        return d;
    }
    Device::Cpu
}

fn open_cuda(ordinal: usize) -> Result<Device> {
    if !cfg!(feature = "cuda") {
        return Err(Error::Device(
            "this build of Lathe has no CUDA support; rebuild with `--features cuda` or use --device cpu".into(),
        ));
    }
    Device::new_cuda(ordinal).map_err(|e| {
        Error::Device(format!(
            "could not open CUDA GPU {ordinal} ({e}); check the driver or use --device cpu"
        ))
    })
}

fn open_metal() -> Result<Device> {
    if !cfg!(feature = "metal") {
        return Err(Error::Device(
            "this build of Lathe has no Metal support; rebuild on macOS with `--features metal` or use --device cpu".into(),
        ));
    }
    Device::new_metal(0).map_err(|e| {
        Error::Device(format!(
            "could not open the Metal GPU ({e}); use --device cpu"
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_missing_backends_say_how_to_fix() {
        assert!(open("cpu").unwrap().is_cpu());
        assert!(open("auto").is_ok());
        assert!(
            open("gpu")
                .unwrap_err()
                .to_string()
                .contains("use auto, cpu")
        );
        if !cfg!(feature = "cuda") {
            assert!(
                open("cuda:0")
                    .unwrap_err()
                    .to_string()
                    .contains("--features cuda")
            );
        }
        if !cfg!(feature = "metal") {
            assert!(
                open("metal")
                    .unwrap_err()
                    .to_string()
                    .contains("--features metal")
            );
        }
    }
}
