//! Complex numbers with principal branches (logarithm, roots, powers, inverse functions), for
//! testing identities the way sympy holds them: over complex symbols, where `\sqrt{x^2} = x` and
//! `\log(x^2) = 2\log(x)` fail (latex.rs).

use std::ops::{Add, Div, Mul, Neg, Sub};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Complex {
    pub re: f64,
    pub im: f64,
}

pub const NAN: Complex = Complex {
    re: f64::NAN,
    im: f64::NAN,
};
const I: Complex = Complex { re: 0.0, im: 1.0 };
const ONE: Complex = Complex { re: 1.0, im: 0.0 };

impl Complex {
    pub fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    pub fn real(re: f64) -> Self {
        Self { re, im: 0.0 }
    }

    pub fn is_finite(self) -> bool {
        self.re.is_finite() && self.im.is_finite()
    }

    /// A real integer, if this is one.
    pub fn as_integer(self) -> Option<f64> {
        (self.im == 0.0 && self.re.fract() == 0.0).then_some(self.re)
    }

    pub fn modulus(self) -> f64 {
        self.re.hypot(self.im)
    }

    pub fn exp(self) -> Self {
        let m = self.re.exp();
        Self::new(m * self.im.cos(), m * self.im.sin())
    }

    /// Principal logarithm: argument in (-π, π].
    pub fn ln(self) -> Self {
        Self::new(self.modulus().ln(), self.im.atan2(self.re))
    }

    pub fn sqrt(self) -> Self {
        if self.re == 0.0 && self.im == 0.0 {
            return self;
        }
        let m = self.modulus();
        let re = ((m + self.re) / 2.0).sqrt();
        let im = ((m - self.re) / 2.0).sqrt().copysign(self.im);
        // A negative real has argument π: its root is +i·√|x|.
        let im = if self.im == 0.0 && self.re < 0.0 { im.abs() } else { im };
        Self::new(re, im)
    }

    /// `self^n` by repeated squaring (a polynomial stays exact-ish, as sympy's is exact).
    pub fn powi(self, n: i64) -> Self {
        let mut result = ONE;
        let mut base = if n < 0 { ONE / self } else { self };
        let mut e = n.unsigned_abs();
        while e > 0 {
            if e & 1 == 1 {
                result = result * base;
            }
            base = base * base;
            e >>= 1;
        }
        result
    }

    /// Principal power `exp(y·ln x)`; `0^y` is 0 for Re(y) > 0.
    pub fn pow(self, y: Self) -> Self {
        match y.as_integer() {
            Some(n) if n.abs() < 1e6 => self.powi(n as i64),
            _ if self.re == 0.0 && self.im == 0.0 => {
                if y.re > 0.0 {
                    Self::real(0.0)
                } else {
                    NAN
                }
            }
            _ => (y * self.ln()).exp(),
        }
    }

    pub fn sin(self) -> Self {
        Self::new(self.re.sin() * self.im.cosh(), self.re.cos() * self.im.sinh())
    }

    pub fn cos(self) -> Self {
        Self::new(self.re.cos() * self.im.cosh(), -self.re.sin() * self.im.sinh())
    }

    pub fn sinh(self) -> Self {
        (self.exp() - (-self).exp()) / Self::real(2.0)
    }

    pub fn cosh(self) -> Self {
        (self.exp() + (-self).exp()) / Self::real(2.0)
    }

    /// -i·ln(iz + √(1 − z²))
    pub fn asin(self) -> Self {
        -I * (I * self + (ONE - self * self).sqrt()).ln()
    }

    /// π/2 − asin z
    pub fn acos(self) -> Self {
        Self::real(std::f64::consts::FRAC_PI_2) - self.asin()
    }

    /// (i/2)·ln((i + z)/(i − z))
    pub fn atan(self) -> Self {
        I / Self::real(2.0) * ((I + self) / (I - self)).ln()
    }

    /// ln(z + √(z² + 1))
    pub fn asinh(self) -> Self {
        (self + (self * self + ONE).sqrt()).ln()
    }

    /// ln(z + √(z + 1)·√(z − 1))
    pub fn acosh(self) -> Self {
        (self + (self + ONE).sqrt() * (self - ONE).sqrt()).ln()
    }

    /// ½·ln((1 + z)/(1 − z))
    pub fn atanh(self) -> Self {
        ((ONE + self) / (ONE - self)).ln() / Self::real(2.0)
    }

    /// sympy's floor and ceiling of a complex number act on each part.
    pub fn parts(self, f: impl Fn(f64) -> f64) -> Self {
        Self::new(f(self.re), f(self.im))
    }

    /// Equal to a relative 1e-9 (of the larger modulus, at least 1).
    pub fn close(self, other: Self) -> bool {
        self.is_finite()
            && other.is_finite()
            && (self - other).modulus() <= 1e-9 * self.modulus().max(other.modulus()).max(1.0)
    }
}

impl Add for Complex {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for Complex {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for Complex {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self::new(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)
    }
}

impl Div for Complex {
    type Output = Self;
    /// NaN for a zero divisor.
    fn div(self, o: Self) -> Self {
        let d = o.re * o.re + o.im * o.im;
        if d == 0.0 {
            return NAN;
        }
        Self::new(
            (self.re * o.re + self.im * o.im) / d,
            (self.im * o.re - self.re * o.im) / d,
        )
    }
}

impl Neg for Complex {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.re, -self.im)
    }
}

#[cfg(test)]
mod tests {
    use super::Complex;

    fn near(a: Complex, re: f64, im: f64) -> bool {
        a.close(Complex::new(re, im))
    }

    #[test]
    fn principal_branches() {
        assert!(near(Complex::real(-4.0).sqrt(), 0.0, 2.0));
        assert!(near(Complex::real(-1.0).ln(), 0.0, std::f64::consts::PI));
        assert!(near(Complex::new(0.0, 1.0).powi(2), -1.0, 0.0));
        // (-8)^(1/3) is the principal root 1 + i√3, not -2.
        assert!(near(
            Complex::real(-8.0).pow(Complex::real(1.0 / 3.0)),
            1.0,
            3f64.sqrt()
        ));
    }

    #[test]
    fn functions_agree_with_f64_on_the_real_line() {
        let x = 0.37;
        let z = Complex::real(x);
        let pairs: [(Complex, f64); 12] = [
            (z.exp(), x.exp()),
            (z.ln(), x.ln()),
            (z.sin(), x.sin()),
            (z.cos(), x.cos()),
            (z.sinh(), x.sinh()),
            (z.cosh(), x.cosh()),
            (z.asin(), x.asin()),
            (z.acos(), x.acos()),
            (z.atan(), x.atan()),
            (z.asinh(), x.asinh()),
            (Complex::real(1.0 + x).acosh(), (1.0 + x).acosh()),
            (z.atanh(), x.atanh()),
        ];
        for (i, (ours, real)) in pairs.into_iter().enumerate() {
            assert!(near(ours, real, 0.0), "{i}: {ours:?} vs {real}");
        }
    }

    #[test]
    fn identities_over_the_complex_plane() {
        let z = Complex::new(-1.3, 0.7);
        assert!(z.sqrt().powi(2).close(z));
        assert!(!(z * z).sqrt().close(z));
        assert!(!(z * z).ln().close(Complex::real(2.0) * z.ln()));
        assert!((z.sin() * z.sin() + z.cos() * z.cos()).close(Complex::real(1.0)));
    }
}
