//! Every object key OpenDuck writes, built and parsed in one place.

use object_store::path::Path;

use crate::layer::LayerId;

const LAYER_DIR: &str = "layers";
const LAYER_SUFFIX: &str = ".layer";
const MARKER: &str = "openduck-store.json";

/// Key of a layer object: `<prefix>/layers/<2 hex>/<64 hex>.layer`.
pub fn layer_path(prefix: &Path, id: &LayerId) -> Path {
    let hex = id.to_hex();
    prefix.clone().join(LAYER_DIR).join(&hex[..2]).join(format!("{hex}{LAYER_SUFFIX}").as_str())
}

/// Key of the marker naming the metadata store this object store belongs with.
pub fn marker_path(prefix: &Path) -> Path {
    prefix.clone().join(MARKER)
}

/// The directory under which all layers live (for listing).
pub fn layers_dir(prefix: &Path) -> Path {
    prefix.clone().join(LAYER_DIR)
}

/// Parse a key produced by [`layer_path`] back into the layer id.
pub fn parse_layer_path(path: &Path) -> Option<LayerId> {
    let name = path.filename()?;
    let hex = name.strip_suffix(LAYER_SUFFIX)?;
    let id = LayerId::from_hex(hex)?;
    (layer_path(&Path::from_iter(prefix_parts(path)), &id) == *path).then_some(id)
}

fn prefix_parts(path: &Path) -> Vec<object_store::path::PathPart<'_>> {
    let parts: Vec<_> = path.parts().collect();
    parts[..parts.len().saturating_sub(3)].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn layer_paths_round_trip(bytes in proptest::array::uniform32(any::<u8>()), prefix in "[a-z]{0,5}(/[a-z0-9]{1,4}){0,2}") {
            let id = LayerId(bytes);
            let prefix = Path::from(prefix.as_str());
            let p = layer_path(&prefix, &id);
            prop_assert_eq!(parse_layer_path(&p), Some(id));
            prop_assert!(p.as_ref().starts_with(layers_dir(&prefix).as_ref()));
        }
    }

    #[test]
    fn foreign_keys_are_not_layers() {
        assert_eq!(parse_layer_path(&Path::from("layers/ab/notahash.layer")), None);
        assert_eq!(parse_layer_path(&Path::from("tmp/file.txt")), None);
    }
}
