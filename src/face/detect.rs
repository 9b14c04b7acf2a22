//! Face detection with YuNet: boxes, scores and 5 landmarks.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::Array4;
use ort::value::TensorRef;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::face::config::FaceConfig;
use crate::face::image::FaceImage;
use crate::models::{ModelSpec, ModelTask};
use crate::runtime::{Runtime, SessionPool};

/// Images with a side shorter than this cannot hold a detectable face.
pub const MIN_IMAGE_SIDE: u32 = 16;

/// One detected face, in the coordinates of the full-resolution image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// Box corners `[x1, y1, x2, y2]` (may extend past the image edges).
    pub bbox: [f32; 4],
    /// Detection confidence in (0, 1): classification × objectness.
    pub score: f32,
    /// Left eye, right eye, nose tip, left and right mouth corners (left = smaller x in the
    /// image), as `[x, y]`.
    pub landmarks: [[f32; 2]; 5],
}

impl Detection {
    /// Box width.
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }

    /// Box height.
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }

    /// Box area (zero for a degenerate box).
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// Maps a detection from a scaled crop whose top-left is `(x0, y0)` in the frame, scaled by
    /// `1/sx`, `1/sy`: `frame = origin + crop × factor`.
    fn map(&mut self, x0: f32, y0: f32, sx: f32, sy: f32) {
        for i in 0..4 {
            self.bbox[i] = if i % 2 == 0 {
                x0 + self.bbox[i] * sx
            } else {
                y0 + self.bbox[i] * sy
            };
        }
        for point in &mut self.landmarks {
            point[0] = x0 + point[0] * sx;
            point[1] = y0 + point[1] * sy;
        }
    }

    fn iou(&self, other: &Detection) -> f32 {
        let w = (self.bbox[2].min(other.bbox[2]) - self.bbox[0].max(other.bbox[0])).max(0.0);
        let h = (self.bbox[3].min(other.bbox[3]) - self.bbox[1].max(other.bbox[1])).max(0.0);
        let inter = w * h;
        inter / (self.area() + other.area() - inter + 1e-9)
    }
}

/// A face box in frame coordinates: top-left corner, width and height.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct FaceBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl FaceBox {
    /// The box `[x1, y1, x2, y2]` of a detection, as the liveness models were trained with it
    /// (integer corner, inclusive size).
    pub fn from_corners(bbox: [f32; 4]) -> FaceBox {
        let (x1, y1) = (bbox[0].trunc(), bbox[1].trunc());
        FaceBox {
            x: x1,
            y: y1,
            width: (bbox[2] - bbox[0] + 1.0).trunc(),
            height: (bbox[3] - bbox[1] + 1.0).trunc(),
        }
    }

    /// The whole image as a box (for inputs that are already face crops).
    pub fn whole(image: &FaceImage) -> FaceBox {
        FaceBox {
            x: 0.0,
            y: 0.0,
            width: image.width() as f32,
            height: image.height() as f32,
        }
    }

    /// Checks that the box has a positive, finite area and overlaps the image.
    pub fn validate(&self, image: &FaceImage) -> Result<()> {
        let finite = [self.x, self.y, self.width, self.height]
            .iter()
            .all(|v| v.is_finite());
        if !finite || self.width < 1.0 || self.height < 1.0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the face box {self:?} has no area"),
            ));
        }
        let (w, h) = (image.width() as f32, image.height() as f32);
        if self.x >= w || self.y >= h || self.x + self.width <= 0.0 || self.y + self.height <= 0.0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("the face box {self:?} lies outside the {w}x{h} image"),
            ));
        }
        Ok(())
    }

    /// Intersection over union with another box.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let w = ((self.x + self.width).min(other.x + other.width) - self.x.max(other.x)).max(0.0);
        let h = ((self.y + self.height).min(other.y + other.height) - self.y.max(other.y)).max(0.0);
        let inter = w * h;
        inter / (self.width * self.height + other.width * other.height - inter)
    }
}

/// The largest face by box area (the one a terminal's customer presents), if any.
pub fn largest(faces: &[Detection]) -> Option<&Detection> {
    faces.iter().max_by(|a, b| a.area().total_cmp(&b.area()))
}

/// YuNet face detector over a pool of sessions.
#[derive(Debug)]
pub struct Detector {
    pool: SessionPool,
    strides: Vec<u32>,
    pad_multiple: u32,
    threshold: f32,
    nms_iou: f32,
    max_side: u32,
    /// Detections run since the detector was loaded (each frame of a presentation is detected
    /// once: this counter is how tests and metrics show it).
    runs: AtomicU64,
}

impl Detector {
    /// Loads and verifies the detector named by `config.detector`.
    pub fn new(
        runtime: &Runtime,
        spec: &ModelSpec,
        model_dir: &std::path::Path,
        config: &FaceConfig,
    ) -> Result<Detector> {
        if spec.task != ModelTask::FaceDetection {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!("model {:?} is not a face detector", spec.name),
            ));
        }
        let strides = spec
            .preprocess
            .strides
            .clone()
            .unwrap_or_else(|| vec![8, 16, 32]);
        let pad_multiple = spec.preprocess.pad_multiple.unwrap_or(32);
        if strides.is_empty()
            || strides
                .iter()
                .any(|&s| s == 0 || !pad_multiple.is_multiple_of(s))
        {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!(
                    "model {:?}: every stride must divide pad_multiple {pad_multiple}",
                    spec.name
                ),
            ));
        }
        Ok(Detector {
            pool: SessionPool::new(runtime, spec, model_dir)?,
            strides,
            pad_multiple,
            threshold: config.detection_threshold,
            nms_iou: config.nms_iou,
            max_side: config.detect_max_side,
            runs: AtomicU64::new(0),
        })
    }

    /// The detector's manifest entry.
    pub fn spec(&self) -> &ModelSpec {
        self.pool.spec()
    }

    /// How many detections this detector has run.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// All faces above the threshold after non-maximum suppression, highest score first, in
    /// full-resolution coordinates. An image without a face gives an empty list. Images
    /// larger than the configured `detect_max_side` are downscaled first; when that leaves
    /// the largest face narrower than [`REFINE_BELOW`] pixels, it alone is found again on a
    /// crop around it where it is about [`REFINE_FACE`] pixels wide (never enlarged past
    /// full resolution), so that its box and landmarks are as precise as a large face's.
    /// Both runs are the one detection of the frame ([`Detector::runs`] counts it once).
    pub fn detect(&self, image: &FaceImage) -> Result<Vec<Detection>> {
        if image.width() < MIN_IMAGE_SIDE || image.height() < MIN_IMAGE_SIDE {
            return Err(Error::new(
                ErrorKind::ImageTooSmall,
                format!(
                    "the image is {}x{}; a face needs at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels",
                    image.width(),
                    image.height()
                ),
            ));
        }
        self.runs.fetch_add(1, Ordering::Relaxed);
        let (input, scale) = detector_input(image, self.max_side)?;
        let mut faces = self.run(&input)?;
        if scale != 1.0 {
            let (sx, sy) = (
                image.width() as f32 / input.width() as f32,
                image.height() as f32 / input.height() as f32,
            );
            faces.iter_mut().for_each(|f| f.map(0.0, 0.0, sx, sy));
        }
        let largest = (0..faces.len()).max_by(|&a, &b| faces[a].area().total_cmp(&faces[b].area()));
        if let Some(i) = largest
            && faces[i].width() * scale < REFINE_BELOW
            && scale < 1.0
            && let Some(refined) = self.refine(image, &faces[i])?
        {
            faces[i] = refined;
        }
        Ok(faces)
    }

    /// `face` found again on a crop around it (twice its longer side, square, inside the
    /// image) scaled so that the face is about [`REFINE_FACE`] pixels wide, never enlarged;
    /// the crop's detection that overlaps `face` most, in full-resolution coordinates, or
    /// `None` when none overlaps it by half (the first detection stands).
    fn refine(&self, image: &FaceImage, face: &Detection) -> Result<Option<Detection>> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let side = (2.0 * face.width().max(face.height())).min(w).min(h);
        let cx = (face.bbox[0] + face.bbox[2]) / 2.0;
        let cy = (face.bbox[1] + face.bbox[3]) / 2.0;
        let x0 = (cx - side / 2.0).clamp(0.0, w - side).floor();
        let y0 = (cy - side / 2.0).clamp(0.0, h - side).floor();
        let side_px = side.floor().max(1.0) as u32;
        let crop = image.cropped(x0 as u32, y0 as u32, side_px, side_px)?;
        let scale = (REFINE_FACE / face.width().max(1.0)).min(1.0);
        let out = ((side_px as f32 * scale).round() as u32).max(MIN_IMAGE_SIDE);
        let input = if out < side_px {
            crop.resized(out, out)?
        } else {
            crop
        };
        let back = side_px as f32 / input.width() as f32;
        let mut found = self.run(&input)?;
        found.iter_mut().for_each(|f| f.map(x0, y0, back, back));
        Ok(found
            .into_iter()
            .map(|f| (f.iou(face), f))
            .filter(|(overlap, _)| *overlap >= 0.5)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, f)| f))
    }

    /// YuNet on `input` as it is: decoded faces above the threshold after NMS, in `input`'s
    /// coordinates.
    fn run(&self, input: &FaceImage) -> Result<Vec<Detection>> {
        let blob = to_bgr_blob(input, self.pad_multiple);
        let mut faces = self.pool.with_session(|session| {
            let tensor = TensorRef::from_array_view(&blob).map_err(inference_error)?;
            let outputs = session.run(ort::inputs![tensor]).map_err(inference_error)?;
            let (height, width) = (blob.shape()[2], blob.shape()[3]);
            let mut faces = Vec::new();
            for &stride in &self.strides {
                let get = |prefix: &str| -> Result<&[f32]> {
                    let name = format!("{prefix}_{stride}");
                    let value = outputs.get(&name).ok_or_else(|| {
                        Error::new(
                            ErrorKind::ModelContract,
                            format!("detector output {name} is missing"),
                        )
                    })?;
                    value
                        .try_extract_tensor::<f32>()
                        .map(|(_, data)| data)
                        .map_err(inference_error)
                };
                decode_stride(
                    StrideOutputs {
                        stride,
                        cols: width / stride as usize,
                        rows: height / stride as usize,
                        cls: get("cls")?,
                        obj: get("obj")?,
                        bbox: get("bbox")?,
                        kps: get("kps")?,
                    },
                    self.threshold,
                    &mut faces,
                )?;
            }
            Ok(faces)
        })?;
        Ok(nms(&mut faces, self.nms_iou))
    }
}

/// A largest face narrower than this many pixels where the detector saw it is found again on
/// a crop around it ([`Detector::detect`]). At the default detection size (320 px), a 640×480
/// frame's face is refined when it is under 128 px wide in the frame.
pub const REFINE_BELOW: f32 = 64.0;

/// How wide a refined face is where the detector sees it the second time, in pixels.
pub const REFINE_FACE: f32 = 128.0;

/// The image the detector sees: downscaled when its longer side exceeds the limit.
fn detector_input(image: &FaceImage, max_side: u32) -> Result<(Cow<'_, FaceImage>, f32)> {
    let longer = image.width().max(image.height());
    if max_side == 0 || longer <= max_side {
        return Ok((Cow::Borrowed(image), 1.0));
    }
    let scale = max_side as f32 / longer as f32;
    let width = ((image.width() as f32 * scale).round() as u32).max(1);
    let height = ((image.height() as f32 * scale).round() as u32).max(1);
    Ok((Cow::Owned(image.resized(width, height)?), scale))
}

struct StrideOutputs<'a> {
    stride: u32,
    cols: usize,
    rows: usize,
    cls: &'a [f32],
    obj: &'a [f32],
    bbox: &'a [f32],
    kps: &'a [f32],
}

/// Decodes one stride's maps: anchors are the cell corners in row-major order.
fn decode_stride(out: StrideOutputs<'_>, threshold: f32, faces: &mut Vec<Detection>) -> Result<()> {
    let n = out.cols * out.rows;
    if out.cls.len() < n || out.obj.len() < n || out.bbox.len() < 4 * n || out.kps.len() < 10 * n {
        return Err(Error::new(
            ErrorKind::ModelContract,
            format!(
                "detector outputs for stride {} are shorter than the {n} anchors of the input",
                out.stride
            ),
        ));
    }
    let s = out.stride as f32;
    for i in 0..n {
        let score = out.cls[i] * out.obj[i];
        if score.partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater) {
            continue;
        }
        let ax = (i % out.cols) as f32 * s;
        let ay = (i / out.cols) as f32 * s;
        let reg = &out.bbox[4 * i..4 * i + 4];
        let cx = reg[0] * s + ax;
        let cy = reg[1] * s + ay;
        let w = reg[2].exp() * s;
        let h = reg[3].exp() * s;
        let k = &out.kps[10 * i..10 * i + 10];
        let mut landmarks = [[0.0f32; 2]; 5];
        for (j, point) in landmarks.iter_mut().enumerate() {
            *point = [k[2 * j] * s + ax, k[2 * j + 1] * s + ay];
        }
        let face = Detection {
            bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
            score,
            landmarks,
        };
        if face
            .bbox
            .iter()
            .chain(landmarks.iter().flatten())
            .all(|v| v.is_finite())
        {
            faces.push(face);
        }
    }
    Ok(())
}

/// Greedy non-maximum suppression, highest score first.
fn nms(faces: &mut [Detection], iou_threshold: f32) -> Vec<Detection> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for face in faces.iter() {
        if kept.iter().all(|k| k.iou(face) <= iou_threshold) {
            kept.push(*face);
        }
    }
    kept
}

/// BGR, raw 0..255 floats, NCHW, zero-padded bottom/right to a multiple of `pad`.
fn to_bgr_blob(image: &FaceImage, pad: u32) -> Array4<f32> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let pad = pad as usize;
    let (pw, ph) = (w.div_ceil(pad) * pad, h.div_ceil(pad) * pad);
    let mut blob = Array4::<f32>::zeros((1, 3, ph, pw));
    let plane = pw * ph;
    // A fresh standard-layout array is contiguous, so this never falls back.
    if let Some(data) = blob.as_slice_mut() {
        let (b, rest) = data.split_at_mut(plane);
        let (g, r) = rest.split_at_mut(plane);
        for (y, row) in image.rgb().chunks_exact(3 * w).enumerate() {
            let at = y * pw;
            for (x, px) in row.chunks_exact(3).enumerate() {
                r[at + x] = f32::from(px[0]);
                g[at + x] = f32::from(px[1]);
                b[at + x] = f32::from(px[2]);
            }
        }
    }
    blob
}

fn inference_error(e: ort::Error) -> Error {
    Error::new(ErrorKind::Inference, format!("face detection failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection {
            bbox: [x1, y1, x2, y2],
            score,
            landmarks: [[0.0; 2]; 5],
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes() {
        let mut faces = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.7),
            det(1.0, 1.0, 11.0, 11.0, 0.9),
            det(50.0, 50.0, 60.0, 60.0, 0.8),
        ];
        let kept = nms(&mut faces, 0.45);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.8);
    }

    #[test]
    fn decoding_places_anchors_at_cell_corners() {
        // 2x2 grid at stride 8; only cell (col 1, row 1) fires, with zero regressions.
        let cls = [0.0, 0.0, 0.0, 0.9];
        let obj = [1.0; 4];
        let bbox = [0.0; 16];
        let kps = [0.0; 40];
        let mut faces = Vec::new();
        decode_stride(
            StrideOutputs {
                stride: 8,
                cols: 2,
                rows: 2,
                cls: &cls,
                obj: &obj,
                bbox: &bbox,
                kps: &kps,
            },
            0.6,
            &mut faces,
        )
        .unwrap();
        assert_eq!(faces.len(), 1);
        // centre at the anchor (8, 8), size exp(0) * 8 = 8
        assert_eq!(faces[0].bbox, [4.0, 4.0, 12.0, 12.0]);
        assert_eq!(faces[0].landmarks[3], [8.0, 8.0]);
    }

    #[test]
    fn short_outputs_are_a_contract_error() {
        let mut faces = Vec::new();
        let err = decode_stride(
            StrideOutputs {
                stride: 8,
                cols: 2,
                rows: 2,
                cls: &[0.0; 3],
                obj: &[0.0; 4],
                bbox: &[0.0; 16],
                kps: &[0.0; 40],
            },
            0.6,
            &mut faces,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ModelContract);
    }

    #[test]
    fn blob_is_bgr_and_padded() {
        let img = FaceImage::from_rgb(33, 1, [1u8, 2, 3].repeat(33)).unwrap();
        let blob = to_bgr_blob(&img, 32);
        assert_eq!(blob.shape(), &[1, 3, 32, 64]);
        assert_eq!(
            (blob[[0, 0, 0, 0]], blob[[0, 1, 0, 0]], blob[[0, 2, 0, 0]]),
            (3.0, 2.0, 1.0)
        );
        assert_eq!(blob[[0, 0, 0, 33]], 0.0);
    }
}
