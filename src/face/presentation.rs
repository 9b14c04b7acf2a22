//! One presentation: the frames a customer showed, and in each frame the one face that the one
//! detection of that frame found.
//!
//! Everything downstream reads the face from here: the quality measurements, the liveness
//! crops ([`crate::face::Liveness::assess`]) and the alignment of the embedded frame
//! ([`crate::face::FacePipeline::embed_presented`]). No frame is ever detected twice, so the
//! face whose liveness is judged is, by construction, the face that is matched. A frame that
//! holds other faces says how large the largest of them is ([`PresentedFace::other_face_share`]):
//! whether that calls for a retake is the decision module's call, not this module's.

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::face::detect::{Detection, Detector, FaceBox};
use crate::face::image::FaceImage;
use crate::face::quality::{self, QualityReport};

/// The face of one frame of a presentation.
#[derive(Clone, Debug, Serialize)]
pub struct PresentedFace {
    /// The frame's largest face, as its one detection found it (box and 5 landmarks, in
    /// full-resolution coordinates).
    pub detection: Detection,
    /// The box the liveness models crop around (the detection's, as they were trained).
    pub face_box: FaceBox,
    /// How many faces the detection found in the frame.
    pub faces: usize,
    /// Box area of the frame's second-largest face over the largest one's (0 when the face is
    /// alone): a bystander far behind is a small share, a photo held beside the face a large one.
    pub other_face_share: f32,
    /// Quality measurements of the face.
    pub quality: QualityReport,
}

/// The frames of one presentation and their faces. Made only by [`observe`] (through
/// [`crate::Engine::observe`]), so every face in it comes from one detection of its frame.
#[derive(Debug)]
pub struct Presentation<'a> {
    frames: &'a [FaceImage],
    faces: Vec<PresentedFace>,
}

impl<'a> Presentation<'a> {
    /// The frames, in capture order.
    pub fn frames(&self) -> &'a [FaceImage] {
        self.frames
    }

    /// The face of each frame, in frame order.
    pub fn faces(&self) -> &[PresentedFace] {
        &self.faces
    }

    /// The frame whose face is sharpest (the one to embed).
    pub fn sharpest(&self) -> usize {
        self.sharpest_frames(1).first().copied().unwrap_or(0)
    }

    /// Up to `count` frames by decreasing sharpness of their face (earlier frames first among
    /// equals).
    pub fn sharpest_frames(&self, count: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.faces.len()).collect();
        order.sort_by(|&a, &b| {
            self.faces[b]
                .quality
                .sharpness
                .total_cmp(&self.faces[a].quality.sharpness)
                .then(a.cmp(&b))
        });
        order.truncate(count);
        order
    }
}

/// Detects every frame once, keeps each frame's largest face and measures its quality.
///
/// Refused with [`ErrorKind::InvalidInput`]: no frames, frames of different sizes, and a face
/// that moves between consecutive frames by more than `min_frame_iou` allows (not one
/// presentation). A frame without a face is [`ErrorKind::NoFace`], a frame too small to hold
/// one [`ErrorKind::ImageTooSmall`]; the message names the frame.
pub fn observe<'a>(
    detector: &Detector,
    frames: &'a [FaceImage],
    min_frame_iou: f32,
) -> Result<Presentation<'a>> {
    let Some(first) = frames.first() else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "a presentation needs at least one frame",
        ));
    };
    let (w, h) = (first.width(), first.height());
    if let Some(i) = frames
        .iter()
        .position(|f| (f.width(), f.height()) != (w, h))
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "frame {} is {}x{} but frame 1 is {w}x{h}; the frames of one presentation come from one camera",
                i + 1,
                frames[i].width(),
                frames[i].height()
            ),
        ));
    }
    let in_frame = |i: usize| {
        move |e: Error| Error::new(e.kind(), format!("frame {}: {}", i + 1, e.message()))
    };
    let mut faces = Vec::with_capacity(frames.len());
    for (i, frame) in frames.iter().enumerate() {
        let detections = detector.detect(frame).map_err(in_frame(i))?;
        let face = largest_face(frame, &detections).map_err(in_frame(i))?;
        faces.push(face);
    }
    let boxes: Vec<FaceBox> = faces.iter().map(|f| f.face_box).collect();
    check_steady(&boxes, min_frame_iou)?;
    Ok(Presentation { frames, faces })
}

/// Refuses ([`ErrorKind::InvalidInput`]) face boxes that jump between consecutive frames by
/// more than `min_frame_iou` allows: the frames are not one presentation.
pub(crate) fn check_steady(boxes: &[FaceBox], min_frame_iou: f32) -> Result<()> {
    for (i, pair) in boxes.windows(2).enumerate() {
        let overlap = pair[0].iou(&pair[1]);
        if overlap < min_frame_iou {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the face moved between frames {} and {} (box overlap {overlap:.2}, at least {min_frame_iou:.2} required): not one presentation",
                    i + 1,
                    i + 2,
                ),
            ));
        }
    }
    Ok(())
}

/// The largest of a frame's detections, with the share of the next largest and the quality
/// measurements.
/// The largest of a frame's detections with its measurements; [`ErrorKind::NoFace`] when
/// there is none.
pub(crate) fn largest_face(frame: &FaceImage, detections: &[Detection]) -> Result<PresentedFace> {
    let mut by_area: Vec<&Detection> = detections.iter().collect();
    by_area.sort_by(|a, b| b.area().total_cmp(&a.area()));
    let Some(&largest) = by_area.first() else {
        return Err(Error::new(
            ErrorKind::NoFace,
            "no face was found; ask the customer to face the camera",
        ));
    };
    let other_face_share = match by_area.get(1) {
        Some(second) if largest.area() > 0.0 => second.area() / largest.area(),
        _ => 0.0,
    };
    let face_box = FaceBox::from_corners(largest.bbox);
    face_box.validate(frame)?;
    Ok(PresentedFace {
        detection: *largest,
        face_box,
        faces: detections.len(),
        other_face_share,
        quality: quality::measure(frame, &face_box, Some(&largest.landmarks)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(x: f32, y: f32, side: f32, score: f32) -> Detection {
        Detection {
            bbox: [x, y, x + side, y + side],
            score,
            landmarks: [[x + side / 2.0, y + side / 2.0]; 5],
        }
    }

    fn frame() -> FaceImage {
        FaceImage::from_rgb(200, 200, vec![100; 200 * 200 * 3]).unwrap()
    }

    #[test]
    fn the_largest_face_is_kept_and_the_next_one_measured() {
        let frame = frame();
        // The larger face scores lower: size, not confidence, picks the customer.
        let found = [
            detection(10.0, 10.0, 40.0, 0.9),
            detection(80.0, 60.0, 80.0, 0.7),
        ];
        let face = largest_face(&frame, &found).unwrap();
        assert_eq!(face.detection, found[1]);
        assert_eq!(face.faces, 2);
        assert!(
            (face.other_face_share - 0.25).abs() < 1e-6,
            "{}",
            face.other_face_share
        );
        assert_eq!(face.face_box, FaceBox::from_corners(found[1].bbox));
        assert_eq!(face.quality.face_width, face.face_box.width);
    }

    #[test]
    fn a_lone_face_has_no_other_share_and_no_face_is_an_error() {
        let frame = frame();
        let face = largest_face(&frame, &[detection(50.0, 50.0, 60.0, 0.9)]).unwrap();
        assert_eq!((face.faces, face.other_face_share), (1, 0.0));
        assert_eq!(
            largest_face(&frame, &[]).unwrap_err().kind(),
            ErrorKind::NoFace
        );
    }

    #[test]
    fn the_sharpest_frame_is_embedded() {
        let frame = frame();
        let mut faces: Vec<PresentedFace> = (0..3)
            .map(|_| largest_face(&frame, &[detection(50.0, 50.0, 60.0, 0.9)]).unwrap())
            .collect();
        faces[1].quality.sharpness = 10.0;
        faces[2].quality.sharpness = 30.0;
        faces[0].quality.sharpness = 20.0;
        let frames = [frame.clone(), frame.clone(), frame];
        let presentation = Presentation {
            frames: &frames,
            faces,
        };
        assert_eq!(presentation.sharpest(), 2);
    }
}
