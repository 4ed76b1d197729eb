//! Coordinates (WGS-84 degrees) and distances on the ground.

use crate::FieldError;

/// Checks a point: both finite and within the globe's ranges. `prefix` is
/// the path the two fields hang under (`""` for top-level `lat`/`lon`,
/// `"location"` for `location.lat`).
pub fn check_point(prefix: &str, lat: f64, lon: f64) -> Result<(), FieldError> {
    let field = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    if !is_latitude(lat) {
        return Err(FieldError::new(
            field("lat"),
            crate::tr!(
                "必须是 -90 到 90 之间的纬度",
                "must be a latitude between -90 and 90"
            ),
        ));
    }
    if !is_longitude(lon) {
        return Err(FieldError::new(
            field("lon"),
            crate::tr!(
                "必须是 -180 到 180 之间的经度",
                "must be a longitude between -180 and 180"
            ),
        ));
    }
    Ok(())
}

pub fn is_latitude(lat: f64) -> bool {
    lat.is_finite() && (-90.0..=90.0).contains(&lat)
}

pub fn is_longitude(lon: f64) -> bool {
    lon.is_finite() && (-180.0..=180.0).contains(&lon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_the_field_they_blame() {
        assert!(check_point("", 36.06, 120.38).is_ok());
        assert!(check_point("", -90.0, 180.0).is_ok());
        assert_eq!(check_point("", 91.0, 0.0).unwrap_err().field, "lat");
        assert_eq!(check_point("", f64::NAN, 0.0).unwrap_err().field, "lat");
        assert_eq!(
            check_point("location", 36.0, 180.5).unwrap_err().field,
            "location.lon"
        );
        assert_eq!(
            check_point("", 0.0, f64::INFINITY).unwrap_err().field,
            "lon"
        );
    }
}
