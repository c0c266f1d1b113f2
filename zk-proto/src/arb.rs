//! proptest strategies for every record, used by the round-trip property tests.

use bytes::Bytes;
use proptest::prelude::*;

/// A type with a proptest strategy covering its whole encodable range.
pub(crate) trait Arb: Sized + std::fmt::Debug {
    fn arb() -> BoxedStrategy<Self>;
}

impl Arb for i32 {
    fn arb() -> BoxedStrategy<Self> {
        any::<i32>().boxed()
    }
}
impl Arb for i64 {
    fn arb() -> BoxedStrategy<Self> {
        any::<i64>().boxed()
    }
}
impl Arb for bool {
    fn arb() -> BoxedStrategy<Self> {
        any::<bool>().boxed()
    }
}
impl Arb for String {
    fn arb() -> BoxedStrategy<Self> {
        ".{0,12}".boxed()
    }
}
impl Arb for Bytes {
    fn arb() -> BoxedStrategy<Self> {
        proptest::collection::vec(any::<u8>(), 0..24)
            .prop_map(Bytes::from)
            .boxed()
    }
}
impl<T: Arb + 'static> Arb for Option<T> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::option::of(T::arb()).boxed()
    }
}
impl<T: Arb + 'static> Arb for Vec<T> {
    fn arb() -> BoxedStrategy<Self> {
        proptest::collection::vec(T::arb(), 0..4).boxed()
    }
}

/// Builds a struct strategy from per-field strategies.
macro_rules! fields {
    ($name:ident;) => {
        ::proptest::strategy::Just($name {}).boxed()
    };
    ($name:ident; $($field:ident : $ty:ty),+) => {
        ( $( <$ty as $crate::arb::Arb>::arb(), )+ )
            .prop_map(|( $($field,)+ )| $name { $($field),+ })
            .boxed()
    };
}
pub(crate) use fields;
