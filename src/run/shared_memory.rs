//! `--shared-memory system` for a sweep: before the load, one region per input of each
//! request (`<prefix>_<input>_<stream>_<entry>`, written once) and one per output (cut
//! into an area per request in flight) are created and registered with the server; after
//! it, whatever ended the run, each is unregistered and removed from /dev/shm. Unlike
//! perf_analyzer, rperf never unregisters every region of the server: only its own, named
//! with its process id, so that runs side by side do not break each other.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::Control;
use crate::config::{Config, LoadMode, Protocol, SharedMemory};
use crate::error::Error;
use crate::input::RequestData;
use crate::model::Model;
use crate::shm::{self, OutputSlots, Owned};
use crate::sync::lock;
use crate::tls::ClientTls;

/// The most bytes the output areas of a run may take together.
const OUTPUT_BUDGET: usize = 1 << 30;
/// Areas per output when the load does not bound the requests in flight (open loops).
const OPEN_LOOP_AREAS: usize = 64;

/// The regions registered by this run, for the exit after a second Ctrl-C: the server's
/// protocol, address and TLS, and the region names.
#[allow(clippy::type_complexity)]
static REGISTERED: Mutex<Option<(Protocol, String, Option<Arc<ClientTls>>, Vec<String>)>> = Mutex::new(None);

/// A run's regions: removed from /dev/shm when dropped; `release` unregisters them first.
pub struct Regions {
    inputs: Vec<Owned>,
    pub outputs: Arc<OutputSlots>,
    registered: Vec<String>,
}

impl Regions {
    /// Creates the regions of `streams` (setting each input's `region`), writes the inputs,
    /// and registers every region. On failure, what was registered is unregistered.
    pub async fn setup(
        config: &Config,
        shared: SharedMemory,
        control: &Control,
        model: &Model,
        streams: &mut [Vec<RequestData>],
    ) -> Result<Regions, Error> {
        let info = control.server_info().await?;
        if !info.has("system_shared_memory") {
            return Err(Error::Model(format!(
                "--shared-memory system cannot be used: it needs the server's 'system_shared_memory' extension ({})",
                super::server_fit::describe(&info)
            )));
        }
        let prefix = shm::prefix();
        let outputs = output_sizes(model, config.load.batch_size, shared.output_size);
        let per_request: usize = outputs.iter().map(|(_, n)| *n).sum();
        let areas = areas(&config.load.mode).min((OUTPUT_BUDGET / per_request.max(1)).max(1));
        let slots = OutputSlots::create(&prefix, &outputs, areas).map_err(|e| Error::Model(e.to_string()))?;
        let mut regions = Regions { inputs: Vec::new(), outputs: Arc::new(slots), registered: Vec::new() };
        let tls = crate::tls::client_of(&config.server)?;
        *lock(&REGISTERED) = Some((config.server.protocol, config.server.url.clone(), tls, Vec::new()));
        match regions.fill(&prefix, control, streams).await {
            Ok(()) => Ok(regions),
            Err(e) => {
                regions.release(control).await;
                Err(e)
            }
        }
    }

    async fn fill(&mut self, prefix: &str, control: &Control, streams: &mut [Vec<RequestData>]) -> Result<(), Error> {
        let outputs: Vec<(String, usize)> =
            self.outputs.areas.iter().map(|a| (a.region.clone(), a.owned.map.len())).collect();
        for (region, size) in outputs {
            self.register(control, &region, size).await?;
        }
        for (s, stream) in streams.iter_mut().enumerate() {
            for (k, request) in stream.iter_mut().enumerate() {
                for t in &mut request.inputs {
                    let region = shm::region_name(prefix, &t.name, &[s, k]);
                    let owned = Owned::create(format!("/{region}"), t.data.len())
                        .map_err(|e| Error::Model(format!("cannot create /dev/shm/{region}: {e}")))?;
                    owned.map.write(0, &t.data);
                    self.inputs.push(owned);
                    self.register(control, &region, t.data.len()).await?;
                    t.region = Some(region);
                }
            }
        }
        Ok(())
    }

    async fn register(&mut self, control: &Control, region: &str, size: usize) -> Result<(), Error> {
        control.register_region(region, &format!("/{region}"), size).await?;
        self.registered.push(region.to_string());
        if let Some((_, _, _, names)) = lock(&REGISTERED).as_mut() {
            names.push(region.to_string());
        }
        Ok(())
    }

    /// Unregisters every region and checks with the server's status that none is left (a
    /// server that does not answer is given up on at once: a dead server holds none), then
    /// removes them from /dev/shm.
    pub async fn release(self, control: &Control) {
        let mut done = Ok(());
        for name in &self.registered {
            done = control.unregister_region(name).await;
            if done.is_err() {
                break;
            }
        }
        if done.is_ok() && !self.registered.is_empty() {
            done = control.regions().await.map(|list| {
                let left: Vec<String> =
                    list.into_iter().map(|r| r.name).filter(|n| self.registered.contains(n)).collect();
                if !left.is_empty() {
                    eprintln!("warning: the server still lists shared memory regions {}", left.join(", "));
                }
            });
        }
        if let Err(e) = done {
            eprintln!("warning: {e}");
        }
        *lock(&REGISTERED) = None;
    }
}

/// The areas each output is cut into: the most requests the load keeps in flight.
fn areas(mode: &LoadMode) -> usize {
    match mode {
        LoadMode::Concurrency(r) if r.end > 0 => r.start.max(r.end) as usize,
        LoadMode::Concurrency(r) => (r.start as usize).max(OPEN_LOOP_AREAS),
        LoadMode::RequestRate(_) | LoadMode::Intervals(_) => OPEN_LOOP_AREAS,
    }
}

/// Each output's bytes per request: its fixed size, or `variable` per batch item when the
/// model does not fix it (variable dimensions, BYTES), as perf_analyzer sizes them.
fn output_sizes(model: &Model, batch_size: usize, variable: usize) -> Vec<(String, usize)> {
    let batch = if model.max_batch_size > 0 { batch_size } else { 1 };
    model
        .outputs
        .iter()
        .map(|o| {
            let fixed = o.datatype.size().and_then(|each| {
                o.shape.iter().try_fold(each, |n, d| usize::try_from(*d).ok().and_then(|d| n.checked_mul(d)))
            });
            (o.name.clone(), fixed.unwrap_or(variable).saturating_mul(batch))
        })
        .collect()
}

/// The exit of a second Ctrl-C skips every drop: this unregisters the run's regions (for at
/// most a second) and removes them from /dev/shm first.
pub async fn release_before_exit() {
    let registered = lock(&REGISTERED).take();
    if let Some((protocol, url, tls, names)) = registered {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let control = Control::connect(protocol, &url, tls).await?;
            for name in &names {
                control.unregister_region(name).await?;
            }
            Ok::<(), Error>(())
        })
        .await;
    }
    shm::remove_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Range, RateRange};
    use crate::model::{DataType, TensorSpec};

    #[test]
    fn outputs_are_sized_as_perf_analyzer_sizes_them_with_one_area_per_request_in_flight() {
        let spec = |name: &str, datatype, shape: Vec<i64>| TensorSpec {
            name: name.into(),
            datatype,
            shape,
            optional: false,
            is_shape_tensor: false,
        };
        let model = Model {
            name: "m".into(),
            version: None,
            max_batch_size: 8,
            inputs: vec![],
            outputs: vec![
                spec("A", DataType::Fp32, vec![4, 2]),
                spec("B", DataType::Fp32, vec![-1]),
                spec("C", DataType::Bytes, vec![1]),
            ],
            composing: vec![],
            sequence: false,
            decoupled: false,
            response_cache: false,
            from_metadata: false,
        };
        let sizes = output_sizes(&model, 2, 100);
        assert_eq!(sizes, vec![("A".into(), 64), ("B".into(), 200), ("C".into(), 200)]);
        let unbatched = Model { max_batch_size: 0, ..model };
        assert_eq!(output_sizes(&unbatched, 2, 100)[0].1, 32);
        assert_eq!(areas(&LoadMode::Concurrency(Range { start: 1, end: 16, step: 1 })), 16);
        assert_eq!(areas(&LoadMode::Concurrency(Range { start: 4, end: 0, step: 1 })), 64);
        assert_eq!(areas(&LoadMode::RequestRate(RateRange { start: 10.0, end: 20.0, step: 5.0 })), 64);
    }
}
