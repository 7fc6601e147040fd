#!/usr/bin/env Rscript
## Independent JAGS reference posteriors for bayeskit's PyMC models.
##
## Usage (from anywhere):
##   Rscript tests/reference/jags/make_jags_reference.R
## Writes reference.json and README.md into the directory containing this
## script.
##
## Requires R with rjags, coda, jsonlite, metafor, metadat and JAGS 4.x
## (Debian: apt-get install jags r-cran-rjags r-cran-coda r-cran-jsonlite
##  r-cran-metafor r-cran-metadat).
## R/JAGS are needed only to REGENERATE these files; the outputs are committed
## and nothing in the Python package depends on R.
##
## Every random number comes from fixed per-chain seeds
## (.RNG.name = "base::Mersenne-Twister", .RNG.seed), so a rerun with the same
## R / JAGS / rjags versions reproduces the numbers exactly.

suppressPackageStartupMessages({
  library(rjags)
  library(coda)
  library(jsonlite)
  library(metafor)
  library(metadat)
})

t_start_all <- Sys.time()

## ---- output directory = directory of this script ---------------------------
args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(file_arg) == 1L) dirname(normalizePath(file_arg)) else getwd()

## ---- global MCMC settings ----------------------------------------------------
N_CHAINS   <- 4L
N_ADAPT    <- 1000L     # rjags adaptation phase (samplers tune; not kept)
N_BURNIN   <- 5000L     # burn-in after adaptation (not kept)
MIN_ESS    <- 20000     # every reported parameter must reach this ESS
RNG_NAME   <- "base::Mersenne-Twister"
QUANTILES  <- c(0.025, 0.5, 0.975)

## JAGS' glm module is NOT loaded: only the base samplers are used.

versions <- list(
  R       = R.version.string,
  JAGS    = as.character(rjags::jags.version()),
  rjags   = as.character(packageVersion("rjags")),
  coda    = as.character(packageVersion("coda")),
  jsonlite = as.character(packageVersion("jsonlite")),
  metafor = as.character(packageVersion("metafor")),
  metadat = as.character(packageVersion("metadat")),
  platform = R.version$platform
)
cat("R:", versions$R, "\nJAGS:", versions$JAGS, "\nrjags:", versions$rjags,
    "\ncoda:", versions$coda, "\noutput directory:", outdir, "\n\n")

## ---- JAGS models -----------------------------------------------------------
## Random effects are written either CENTRED, theta[i] ~ N(mean_i, tau^2), or
## NON-CENTRED, theta[i] <- mean_i + tau * eta[i] with eta[i] ~ N(0, 1).
## Both define the same joint posterior of (mu, tau, theta) (a change of
## variables); the choice only affects how well JAGS' samplers mix, and was
## made per case from pilot runs (non-centred when tau is poorly identified
## and often near 0, centred when the data are informative).
## theta_new <- mu + tau * eta_new, eta_new ~ N(0, 1) is a draw from
## N(mu, tau^2) at every iteration (predictive distribution of a new study's
## true effect).
## JAGS: dnorm(mean, PRECISION); dt(mu, PRECISION, df).

tau_prior_code <- function(family) {
  switch(family,
    halfcauchy = "tau ~ dt(0, 1 / pow(tau_scale, 2), 1) T(0,)",
    halfnormal = "tau ~ dnorm(0, 1 / pow(tau_scale, 2)) T(0,)",
    stop("unknown tau prior"))
}

theta_code <- function(mean, centred) {
  if (centred) sprintf("    theta[i] ~ dnorm(%s, 1 / pow(tau, 2))", mean)
  else sprintf("    eta[i] ~ dnorm(0, 1)\n    theta[i] <- %s + tau * eta[i]", mean)
}

model_nn <- function(tau_family, centred) paste0(
"model {
  for (i in 1:k) {
", theta_code("mu", centred), "\
    y[i] ~ dnorm(theta[i], 1 / v[i])
  }
  mu ~ dnorm(mu_mean, 1 / pow(mu_sd, 2))
  ", tau_prior_code(tau_family), "
  eta_new ~ dnorm(0, 1)
  theta_new <- mu + tau * eta_new
}
")

model_metareg <- function(tau_family, centred) paste0(
"model {
  for (i in 1:k) {
", theta_code("b0 + b1 * x[i]", centred), "\
    y[i] ~ dnorm(theta[i], 1 / v[i])
  }
  b0 ~ dnorm(b0_mean, 1 / pow(b0_sd, 2))
  b1 ~ dnorm(b1_mean, 1 / pow(b1_sd, 2))
  ", tau_prior_code(tau_family), "
}
")

## arm j = 1: control (x = -1/2), arm j = 2: treatment (x = +1/2)
model_binnorm <- function(tau_family, centred) paste0(
"model {
  for (i in 1:k) {
", theta_code("mu", centred), "\
    alpha[i] ~ dnorm(0, 1 / pow(alpha_sd, 2))
    for (j in 1:2) {
      logit(p[i, j]) <- alpha[i] + x[j] * theta[i]
      r[i, j] ~ dbin(p[i, j], n[i, j])
    }
  }
  mu ~ dnorm(mu_mean, 1 / pow(mu_sd, 2))
  ", tau_prior_code(tau_family), "
  eta_new ~ dnorm(0, 1)
  theta_new <- mu + tau * eta_new
}
")

model_normarm <- function(tau_family, centred) paste0(
"model {
  for (i in 1:k) {
", theta_code("mu", centred), "\
    alpha[i] ~ dnorm(0, 1 / pow(alpha_sd, 2))
    for (j in 1:2) {
      m[i, j] ~ dnorm(alpha[i] + x[j] * theta[i], n[i, j] / pow(s[i, j], 2))
    }
  }
  mu ~ dnorm(mu_mean, 1 / pow(mu_sd, 2))
  ", tau_prior_code(tau_family), "
  eta_new ~ dnorm(0, 1)
  theta_new <- mu + tau * eta_new
}
")

## ---- equations (for the README) ---------------------------------------------
eq_nn <- function(mu_sd, tau_txt) c(
  "y_i ~ N(theta_i, v_i)            (v_i = sigma_i^2 known)",
  "theta_i ~ N(mu, tau^2)",
  sprintf("mu ~ N(0, %s^2)", mu_sd),
  sprintf("tau ~ %s", tau_txt),
  "theta_new ~ N(mu, tau^2)   (drawn afresh at every iteration)")

## ---- data --------------------------------------------------------------------
## A. Eight schools, BDA3 Table 5.2
es_labels <- LETTERS[1:8]
es_y      <- c(28, 8, -3, 7, -1, 1, 18, 12)
es_sigma  <- c(15, 10, 16, 11, 9, 11, 10, 18)

## B/C/G. BCG vaccine: log risk ratios from metafor::escalc
bcg <- metadat::dat.bcg
bcg_es <- metafor::escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg,
                          data = bcg)
bcg_labels <- paste(bcg$author, bcg$year)
stopifnot(!anyDuplicated(bcg_labels))
bcg_yi <- as.numeric(bcg_es$yi)
bcg_vi <- as.numeric(bcg_es$vi)

## D. Nielweise 2007 (catheter-related bloodstream infections)
niel <- metadat::dat.nielweise2007
niel_labels <- paste(niel$author, niel$year)
stopifnot(!anyDuplicated(niel_labels))

## F. Normand 1999 (length of hospital stay)
norm <- metadat::dat.normand1999
norm_labels <- as.character(norm$source)
stopifnot(!anyDuplicated(norm_labels))

## ---- case definitions -------------------------------------------------------
## seed of chain c in case number q: 1000 * q + c
cases <- list(
  list(
    name = "eight_schools_nn", number = 1L,
    description = "Eight schools (BDA3 Table 5.2), normal-normal random-effects model, half-Cauchy(5) tau.",
    data_source = "Gelman A, Carlin JB, Stern HS, Dunson DB, Vehtari A, Rubin DB (2013). Bayesian Data Analysis, 3rd ed., Table 5.2 (from Rubin DB (1981), J Educ Stat 6:377-401).",
    model = model_nn, tau_family = "halfcauchy", centred = FALSE,
    jags_data = list(k = 8L, y = es_y, v = es_sigma^2,
                     mu_mean = 0, mu_sd = 5, tau_scale = 5),
    recorded_data = list(labels = es_labels, y = es_y, sigma = es_sigma,
                         v = es_sigma^2),
    priors = list(mu = "Normal(mean 0, sd 5)", tau = "HalfCauchy(scale 5)"),
    equations = eq_nn(5, "HalfCauchy(5), density proportional to 1 / (1 + (tau/5)^2) on tau > 0"),
    init_center = list(mu = 0, tau = 5),
    monitor = c("mu", "tau", "theta", "theta_new"),
    theta_labels = es_labels,
    quad = function() spec_nn(es_y, es_sigma^2, matrix(1, 8, 1), 0, 5, "mu",
                              es_labels, TRUE, TRUE),
    n_iter = 100000L, thin = 1L),
  list(
    name = "bcg_nn", number = 2L,
    description = "BCG vaccine trials, log risk ratio (metafor::escalc 'RR'), normal-normal random-effects model, half-normal(0.5) tau.",
    data_source = "metadat::dat.bcg (Colditz GA et al. (1994), JAMA 271:698-702); yi/vi from metafor::escalc(\"RR\", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg).",
    model = model_nn, tau_family = "halfnormal", centred = TRUE,
    jags_data = list(k = length(bcg_yi), y = bcg_yi, v = bcg_vi,
                     mu_mean = 0, mu_sd = 4, tau_scale = 0.5),
    recorded_data = list(labels = bcg_labels, yi = bcg_yi, vi = bcg_vi),
    priors = list(mu = "Normal(mean 0, sd 4)", tau = "HalfNormal(scale 0.5)"),
    equations = eq_nn(4, "HalfNormal(0.5), density proportional to exp(-tau^2 / (2 * 0.5^2)) on tau > 0"),
    init_center = list(mu = 0, tau = 0.5),
    monitor = c("mu", "tau", "theta", "theta_new"),
    theta_labels = bcg_labels,
    quad = function() spec_nn(bcg_yi, bcg_vi, matrix(1, length(bcg_yi), 1), 0, 4,
                              "mu", bcg_labels, TRUE, TRUE),
    n_iter = 100000L, thin = 1L),
  list(
    name = "bcg_nn_meta_regression", number = 3L,
    description = "BCG vaccine trials, log risk ratio, random-effects meta-regression on absolute latitude (raw, not centred), half-normal(0.5) tau.",
    data_source = "metadat::dat.bcg (Colditz GA et al. (1994), JAMA 271:698-702); yi/vi as in bcg_nn; covariate ablat.",
    model = model_metareg, tau_family = "halfnormal", centred = TRUE,
    jags_data = list(k = length(bcg_yi), y = bcg_yi, v = bcg_vi,
                     x = as.numeric(bcg$ablat),
                     b0_mean = 0, b0_sd = 10, b1_mean = 0, b1_sd = 1,
                     tau_scale = 0.5),
    recorded_data = list(labels = bcg_labels, yi = bcg_yi, vi = bcg_vi,
                         ablat = as.numeric(bcg$ablat)),
    priors = list(b0 = "Normal(mean 0, sd 10)", b1 = "Normal(mean 0, sd 1)",
                  tau = "HalfNormal(scale 0.5)"),
    equations = c(
      "y_i ~ N(theta_i, v_i)            (v_i known)",
      "theta_i ~ N(b0 + b1 * ablat_i, tau^2)",
      "ablat_i: absolute latitude in degrees, RAW (not centred)",
      "b0 ~ N(0, 10^2)",
      "b1 ~ N(0, 1^2)",
      "tau ~ HalfNormal(0.5)"),
    init_center = list(b0 = 0, b1 = 0, tau = 0.5),
    monitor = c("b0", "b1", "tau"),
    theta_labels = NULL,
    quad = function() spec_nn(bcg_yi, bcg_vi, cbind(1, as.numeric(bcg$ablat)),
                              c(0, 0), c(10, 1), c("b0", "b1"), NULL, FALSE, FALSE),
    n_iter = 400000L, thin = 1L),
  list(
    name = "nielweise_binomial_normal", number = 4L,
    description = "Nielweise 2007 catheter infections, binomial-normal model (fixed study baselines, treatment coded -1/2 control, +1/2 treatment; Jackson et al. 2018 Stat Med 37:1059), half-normal(0.5) tau. theta is a log odds ratio (treatment vs control). All 18 studies used, including the double-zero study (Yucel 2004).",
    data_source = "metadat::dat.nielweise2007 (Niel-Weise BS, Stijnen T, van den Broek PJ (2007), Intensive Care Med 33:2058-2068; also used by Stijnen T, Hamza TH, Ozdemir P (2010), Stat Med 29:3046-3067). ai/n1i = treatment (anti-infective catheter), ci/n2i = control.",
    model = model_binnorm, tau_family = "halfnormal", centred = FALSE,
    jags_data = list(k = nrow(niel), x = c(-0.5, 0.5),
                     r = cbind(niel$ci, niel$ai), n = cbind(niel$n2i, niel$n1i),
                     alpha_sd = 10, mu_mean = 0, mu_sd = 4, tau_scale = 0.5),
    recorded_data = list(labels = niel_labels,
                         r_treatment = niel$ai, n_treatment = niel$n1i,
                         r_control = niel$ci, n_control = niel$n2i,
                         x_control = -0.5, x_treatment = 0.5),
    priors = list(alpha_i = "Normal(mean 0, sd 10), independent",
                  mu = "Normal(mean 0, sd 4)", tau = "HalfNormal(scale 0.5)"),
    equations = c(
      "r_ij ~ Binomial(n_ij, p_ij),  j in {control, treatment}",
      "logit(p_ij) = alpha_i + x_ij * theta_i,  x = -1/2 (control), +1/2 (treatment)",
      "theta_i ~ N(mu, tau^2)",
      "alpha_i ~ N(0, 10^2) independently (fixed study baselines)",
      "mu ~ N(0, 4^2)",
      "tau ~ HalfNormal(0.5)",
      "theta_new ~ N(mu, tau^2)   (drawn afresh at every iteration)"),
    init_center = list(mu = 0, tau = 0.5),
    monitor = c("mu", "tau", "theta", "theta_new"),
    theta_labels = niel_labels,
    n_iter = 150000L, thin = 1L),
  list(
    name = "bcg_binomial_normal", number = 5L,
    description = "BCG vaccine trials, binomial-normal model as in nielweise_binomial_normal (theta = log odds ratio, vaccinated vs not), half-normal(0.5) tau.",
    data_source = "metadat::dat.bcg (Colditz GA et al. (1994), JAMA 271:698-702). Treatment arm: tpos events of tpos+tneg; control arm: cpos events of cpos+cneg.",
    model = model_binnorm, tau_family = "halfnormal", centred = TRUE,
    jags_data = list(k = nrow(bcg), x = c(-0.5, 0.5),
                     r = cbind(bcg$cpos, bcg$tpos),
                     n = cbind(bcg$cpos + bcg$cneg, bcg$tpos + bcg$tneg),
                     alpha_sd = 10, mu_mean = 0, mu_sd = 4, tau_scale = 0.5),
    recorded_data = list(labels = bcg_labels,
                         r_treatment = bcg$tpos, n_treatment = bcg$tpos + bcg$tneg,
                         r_control = bcg$cpos, n_control = bcg$cpos + bcg$cneg,
                         x_control = -0.5, x_treatment = 0.5),
    priors = list(alpha_i = "Normal(mean 0, sd 10), independent",
                  mu = "Normal(mean 0, sd 4)", tau = "HalfNormal(scale 0.5)"),
    equations = c(
      "r_ij ~ Binomial(n_ij, p_ij)",
      "logit(p_ij) = alpha_i + x_ij * theta_i,  x = -1/2 (control), +1/2 (treatment)",
      "theta_i ~ N(mu, tau^2)",
      "alpha_i ~ N(0, 10^2) independently",
      "mu ~ N(0, 4^2)",
      "tau ~ HalfNormal(0.5)",
      "theta_new ~ N(mu, tau^2)   (drawn afresh at every iteration)"),
    init_center = list(mu = 0, tau = 0.5),
    monitor = c("mu", "tau", "theta_new"),
    theta_labels = NULL,
    n_iter = 100000L, thin = 1L),
  list(
    name = "normand_normal_arm", number = 6L,
    description = "Normand 1999 length of hospital stay (days), arm-level normal model with observed SDs treated as known, fixed study baselines, treatment coded -1/2 / +1/2; theta = mean difference (specialist care minus routine care), half-normal(25) tau.",
    data_source = "metadat::dat.normand1999 (Normand S-LT (1999), Stat Med 18:321-359). Group 1 (m1i, sd1i, n1i) = treatment (specialist care), group 2 (m2i, sd2i, n2i) = control.",
    model = model_normarm, tau_family = "halfnormal", centred = TRUE,
    jags_data = list(k = nrow(norm), x = c(-0.5, 0.5),
                     m = cbind(norm$m2i, norm$m1i),
                     s = cbind(norm$sd2i, norm$sd1i),
                     n = cbind(norm$n2i, norm$n1i),
                     alpha_sd = 1000, mu_mean = 0, mu_sd = 50, tau_scale = 25),
    recorded_data = list(labels = norm_labels,
                         m_treatment = norm$m1i, sd_treatment = norm$sd1i, n_treatment = norm$n1i,
                         m_control = norm$m2i, sd_control = norm$sd2i, n_control = norm$n2i,
                         x_control = -0.5, x_treatment = 0.5),
    priors = list(alpha_i = "Normal(mean 0, sd 1000), independent",
                  mu = "Normal(mean 0, sd 50)", tau = "HalfNormal(scale 25)"),
    equations = c(
      "m_ij ~ N(alpha_i + x_ij * theta_i, sd_ij^2 / n_ij)   (sd_ij observed, treated as known)",
      "x = -1/2 (control), +1/2 (treatment)",
      "theta_i ~ N(mu, tau^2)",
      "alpha_i ~ N(0, 1000^2) independently",
      "mu ~ N(0, 50^2)",
      "tau ~ HalfNormal(25)",
      "theta_new ~ N(mu, tau^2)   (drawn afresh at every iteration)"),
    init_center = list(mu = 0, tau = 25),
    monitor = c("mu", "tau", "theta_new"),
    theta_labels = NULL,
    quad = function() spec_normarm(cbind(norm$m2i, norm$m1i), cbind(norm$sd2i, norm$sd1i),
                                   cbind(norm$n2i, norm$n1i), c(-0.5, 0.5), 1000, 50, TRUE),
    n_iter = 100000L, thin = 1L),
  list(
    name = "two_study_nn", number = 7L,
    description = "First two BCG trials only (log risk ratios as in bcg_nn), normal-normal random-effects model, half-normal(0.5) tau.",
    data_source = "metadat::dat.bcg rows 1-2 (Aronson 1948, Ferguson & Simes 1949); yi/vi from metafor::escalc(\"RR\", ...).",
    model = model_nn, tau_family = "halfnormal", centred = FALSE,
    jags_data = list(k = 2L, y = bcg_yi[1:2], v = bcg_vi[1:2],
                     mu_mean = 0, mu_sd = 4, tau_scale = 0.5),
    recorded_data = list(labels = bcg_labels[1:2], yi = bcg_yi[1:2], vi = bcg_vi[1:2]),
    priors = list(mu = "Normal(mean 0, sd 4)", tau = "HalfNormal(scale 0.5)"),
    equations = eq_nn(4, "HalfNormal(0.5)"),
    init_center = list(mu = 0, tau = 0.5),
    monitor = c("mu", "tau", "theta_new"),
    theta_labels = NULL,
    quad = function() spec_nn(bcg_yi[1:2], bcg_vi[1:2], matrix(1, 2, 1), 0, 4, "mu",
                              bcg_labels[1:2], FALSE, TRUE),
    n_iter = 100000L, thin = 1L)
)

## ---- validation cases ---------------------------------------------------------
## Not targets for bayeskit: these re-run, with the same JAGS machinery and the
## same quadrature, examples whose posterior summaries are PUBLISHED (computed
## by bayesmeta's numerical integration), to check this pipeline end to end.
## See ../published/README.md for the exact sources.

## Rubin (1981) eight schools with unrounded data, as printed in BDA 1st ed.
## p.143 and used by bayesmeta's data set Rubin1981.
rubin_y     <- c(28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16)
rubin_sigma <- c(14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6)

## Crins et al. (2014) IL-2RA example, counts as printed in Table 3 of
## Roever (2020), J Stat Softw 93(6).
crins <- data.frame(
  label = c("Heffron (2003)", "Gibelli (2004)", "Schuller (2005)",
            "Ganschow (2005)", "Spada (2006)", "Gras (2008)"),
  ai = c(14, 16, 3, 9, 4, 0), n1i = c(61, 28, 18, 54, 36, 50),
  ci = c(15, 19, 8, 29, 11, 3), n2i = c(20, 28, 12, 54, 36, 34),
  randomized = c(TRUE, FALSE, FALSE, FALSE, TRUE, FALSE),
  stringsAsFactors = FALSE)
crins_es <- metafor::escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = crins)
crins_yi <- as.numeric(crins_es$yi); crins_vi <- as.numeric(crins_es$vi)
crins_r  <- which(crins$randomized)

validation_cases <- list(
  list(
    name = "rubin1981_bayesmeta_vignette", number = 8L,
    description = "VALIDATION ONLY. Eight schools with unrounded data (Rubin 1981), mu ~ N(0, 50^2), tau ~ HalfCauchy(25): the 'schools.example.1' analysis of the bayesmeta vignette.",
    data_source = "Rubin DB (1981), J Educ Stat 6:377-401; values as in BDA 1st ed. p.143 / bayesmeta data set Rubin1981.",
    model = model_nn, tau_family = "halfcauchy", centred = FALSE,
    jags_data = list(k = 8L, y = rubin_y, v = rubin_sigma^2,
                     mu_mean = 0, mu_sd = 50, tau_scale = 25),
    recorded_data = list(labels = es_labels, y = rubin_y, sigma = rubin_sigma),
    priors = list(mu = "Normal(mean 0, sd 50)", tau = "HalfCauchy(scale 25)"),
    equations = eq_nn(50, "HalfCauchy(25)"),
    init_center = list(mu = 0, tau = 25),
    monitor = c("mu", "tau", "theta", "theta_new"),
    theta_labels = es_labels,
    quad = function() spec_nn(rubin_y, rubin_sigma^2, matrix(1, 8, 1), 0, 50, "mu",
                              es_labels, TRUE, TRUE),
    published = list(
      source = "bayesmeta 3.4 vignette 'bayesmeta.Rmd' (inst/doc/bayesmeta.html, printed output), github:cran/bayesmeta commit e7eaba2af611b8cace198c31ee107ef7bda58b55",
      tau = list(median = 4.758539, mean = 5.884511, sd = 4.869904, q2.5 = 0.2199559, q97.5 = 18.0531718),
      mu = list(median = 7.962961, mean = 7.985729, sd = 4.995762),
      theta_new = list(median = 7.926819, mean = 7.985729, sd = 9.126767),
      "theta[A]" = list(median = 10.093581, mean = 11.095255, sd = 7.901084),
      "theta[G]" = list(median = 9.786985, mean = 10.336032, sd = 6.631039),
      "theta[H]" = list(median = 8.266594, mean = 8.474644, sd = 7.456906)),
    n_iter = 100000L, thin = 1L),
  list(
    name = "crins2014_bayesmeta_jss", number = 9L,
    description = "VALIDATION ONLY. Crins et al. (2014) log odds ratios (metafor::escalc 'OR', default 1/2 correction for Gras 2008), mu ~ N(0, 4^2), tau ~ HalfNormal(0.5): analysis 'ma01' of Roever (2020), J Stat Softw 93(6), Section 3.3.",
    data_source = "Crins ND, Roever C, Goralczyk AD, Friede T (2014), Pediatric Transplantation 18:839-850; counts from Table 3 of Roever (2020).",
    model = model_nn, tau_family = "halfnormal", centred = FALSE,
    jags_data = list(k = 6L, y = crins_yi, v = crins_vi,
                     mu_mean = 0, mu_sd = 4, tau_scale = 0.5),
    recorded_data = list(labels = crins$label, ai = crins$ai, n1i = crins$n1i,
                         ci = crins$ci, n2i = crins$n2i, yi = crins_yi, vi = crins_vi),
    priors = list(mu = "Normal(mean 0, sd 4)", tau = "HalfNormal(scale 0.5)"),
    equations = eq_nn(4, "HalfNormal(0.5)"),
    init_center = list(mu = 0, tau = 0.5),
    monitor = c("mu", "tau", "theta", "theta_new"),
    theta_labels = crins$label,
    quad = function() spec_nn(crins_yi, crins_vi, matrix(1, 6, 1), 0, 4, "mu",
                              crins$label, TRUE, TRUE),
    published = list(
      source = "Roever C (2020), J Stat Softw 93(6):1-51, doi:10.18637/jss.v093.i06, Section 3.3 (printed output of ma01 and ma01$summary, ma01$theta); PDF in github:cran/bayesmeta commit e7eaba2af611b8cace198c31ee107ef7bda58b55, inst/doc/Roever2020-bayesmeta.pdf",
      tau = list(median = 0.3445022, mean = 0.3810562, sd = 0.2593672, q0.5 = 0.003547657, q99 = 1.109186, q99.5 = 1.205400562),
      mu = list(median = -1.5734823, mean = -1.5764366, sd = 0.3295298),
      theta_new = list(median = -1.5701653, mean = -1.5764365, sd = 0.5671855),
      "theta[Heffron (2003)]" = list(median = -1.7411356, mean = -1.7778965, sd = 0.4229425),
      "theta[Gibelli (2004)]" = list(median = -1.2821722, mean = -1.2339736, sd = 0.4488759)),
    n_iter = 100000L, thin = 1L),
  list(
    name = "crins2014_randomized_two_study", number = 10L,
    description = "VALIDATION ONLY. The two randomized Crins et al. studies (Heffron 2003, Spada 2006), same priors as crins2014_bayesmeta_jss: analysis 'ma05' of Roever (2020), Section 3.6.",
    data_source = "as crins2014_bayesmeta_jss, rows Heffron (2003) and Spada (2006).",
    model = model_nn, tau_family = "halfnormal", centred = FALSE,
    jags_data = list(k = 2L, y = crins_yi[crins_r], v = crins_vi[crins_r],
                     mu_mean = 0, mu_sd = 4, tau_scale = 0.5),
    recorded_data = list(labels = crins$label[crins_r], yi = crins_yi[crins_r], vi = crins_vi[crins_r]),
    priors = list(mu = "Normal(mean 0, sd 4)", tau = "HalfNormal(scale 0.5)"),
    equations = eq_nn(4, "HalfNormal(0.5)"),
    init_center = list(mu = 0, tau = 0.5),
    monitor = c("mu", "tau", "theta_new"),
    theta_labels = NULL,
    quad = function() spec_nn(crins_yi[crins_r], crins_vi[crins_r], matrix(1, 2, 1), 0, 4,
                              "mu", crins$label[crins_r], FALSE, TRUE),
    published = list(
      source = "Roever C (2020), J Stat Softw 93(6), Section 3.6 and Figure 6 (forest plot labels, rounded to 2 decimals; point = posterior median, interval = 95% shortest credible interval)",
      mu = list(median = -1.78, prob_mu_below_0 = 0.9974968),
      theta_new = list(median = -1.78)),
    n_iter = 100000L, thin = 1L)
)
for (q in seq_along(validation_cases))
  validation_cases[[q]]$code <- validation_cases[[q]]$model(validation_cases[[q]]$tau_family,
                                                            validation_cases[[q]]$centred)

for (q in seq_along(cases))
  cases[[q]]$code <- cases[[q]]$model(cases[[q]]$tau_family, cases[[q]]$centred)

## optional: restrict to some cases / scale iterations for quick checks
## (JAGS_REF_ONLY="bcg_nn,two_study_nn", JAGS_REF_ITER=10000). The committed
## reference.json must be produced WITHOUT these variables.
only <- Sys.getenv("JAGS_REF_ONLY", "")
iter_override <- Sys.getenv("JAGS_REF_ITER", "")
if (nzchar(only)) {
  keep_names <- strsplit(only, ",")[[1]]
  cases <- Filter(function(cs) cs$name %in% keep_names, cases)
  validation_cases <- Filter(function(cs) cs$name %in% keep_names, validation_cases)
}

## ---- deterministic check: quadrature over tau -------------------------------
## For the all-Gaussian models (normal-normal, meta-regression, arm-level
## normal) every unknown except tau is jointly Gaussian given tau. So
## p(tau | y) is known up to a constant (prior x Gaussian marginal likelihood),
## and every other reported quantity is a mixture over p(tau | y) of normals
## whose means and variances follow from Gaussian conditioning. The 1-D
## integral over tau is done with the trapezoidal rule in u = log(tau) on a
## fine grid; precision is checked by halving the grid. This gives an
## MCMC-free reference to check the JAGS output against. The binomial models
## have no such closed form and are checked by JAGS alone.

tau_logprior <- function(family, s) {
  switch(family,
    halfcauchy = function(t) log(2) - log(pi * s) - log1p((t / s)^2),
    halfnormal = function(t) log(2) + dnorm(t, 0, s, log = TRUE),
    stop("unknown tau prior"))
}

## Gaussian specification given tau: z ~ N(mz, Sz(tau)), y = H z + e,
## e ~ N(0, diag(ev)); reported quantity q = L[q, ] z (+ extra variance).
spec_nn <- function(y, v, X, b_mean, b_sd, names_beta, theta_labels,
                    with_theta, with_new) {
  k <- length(y); p <- ncol(X)
  S0 <- diag(b_sd^2, p)
  mz <- c(b_mean, X %*% b_mean)
  H <- cbind(matrix(0, k, p), diag(k))
  rows <- list(); extra <- character(0)
  for (j in seq_len(p)) { r <- numeric(p + k); r[j] <- 1; rows[[names_beta[j]]] <- r }
  if (with_theta) for (i in seq_len(k)) {
    r <- numeric(p + k); r[p + i] <- 1
    rows[[paste0("theta[", theta_labels[i], "]")]] <- r
  }
  if (with_new) { rows[["theta_new"]] <- rows[[names_beta[1]]]; extra <- "theta_new" }
  list(y = y, ev = v, mz = mz, H = H,
       Sz = function(tau) {
         XS <- X %*% S0
         rbind(cbind(S0, t(XS)), cbind(XS, XS %*% t(X) + diag(tau^2, k)))
       },
       L = do.call(rbind, rows), extra_tau2 = rownames(do.call(rbind, rows)) %in% extra)
}

spec_normarm <- function(m, s, n, x, alpha_sd, mu_sd, with_new) {
  ## z = (alpha_1..k, mu, theta_1..k); y stacked study by study (control, treatment)
  k <- nrow(m); nz <- 2 * k + 1
  H <- matrix(0, 2 * k, nz)
  for (i in seq_len(k)) for (j in 1:2) {
    H[2 * (i - 1) + j, i] <- 1
    H[2 * (i - 1) + j, k + 1 + i] <- x[j]
  }
  rows <- list(mu = c(rep(0, k), 1, rep(0, k)))
  if (with_new) rows[["theta_new"]] <- rows$mu
  L <- do.call(rbind, rows)
  list(y = as.vector(t(m)), ev = as.vector(t(s^2 / n)), mz = rep(0, nz), H = H,
       Sz = function(tau) {
         Sz <- matrix(0, nz, nz)
         diag(Sz)[1:k] <- alpha_sd^2
         idx <- (k + 1):nz                      # mu and theta
         Sz[idx, idx] <- mu_sd^2
         Sz[k + 1 + (1:k), k + 1 + (1:k)] <- Sz[k + 1 + (1:k), k + 1 + (1:k)] + diag(tau^2, k)
         Sz
       },
       L = L, extra_tau2 = rownames(L) == "theta_new")
}

gauss_given_tau <- function(spec, tau) {
  Sz <- spec$Sz(tau)
  SzHt <- Sz %*% t(spec$H)
  S <- spec$H %*% SzHt + diag(spec$ev, length(spec$ev))
  R <- chol(S)                                    # S = R'R
  r <- spec$y - as.vector(spec$H %*% spec$mz)
  w <- forwardsolve(t(R), r)
  Q <- forwardsolve(t(R), t(SzHt))                # R'^-1 H Sz
  logml <- -0.5 * sum(w^2) - sum(log(diag(R))) - 0.5 * length(r) * log(2 * pi)
  zmean <- spec$mz + as.vector(t(Q) %*% w)
  zcov <- Sz - crossprod(Q)
  qm <- as.vector(spec$L %*% zmean)
  qv <- rowSums((spec$L %*% zcov) * spec$L) + ifelse(spec$extra_tau2, tau^2, 0)
  list(logml = logml, mean = qm, var = pmax(qv, 0))
}

quad_summary <- function(spec, tau_family, tau_scale, n_grid = 40001L) {
  logprior <- tau_logprior(tau_family, tau_scale)
  run_grid <- function(ng) {
    u <- seq(log(tau_scale) - 25, log(tau_scale) + 12, length.out = ng)
    tau <- exp(u); du <- u[2] - u[1]
    ev <- lapply(tau, function(t) gauss_given_tau(spec, t))
    lw <- vapply(ev, function(e) e$logml, 0) + logprior(tau) + u  # + log Jacobian
    w <- exp(lw - max(lw)); w[c(1, ng)] <- w[c(1, ng)] / 2          # trapezoid
    w <- w / sum(w)
    M <- do.call(rbind, lapply(ev, function(e) e$mean))
    V <- do.call(rbind, lapply(ev, function(e) e$var))
    colnames(M) <- colnames(V) <- rownames(spec$L)
    list(tau = tau, w = w, M = M, V = V, du = du)
  }
  summarise <- function(g) {
    out <- list()
    qfun_mix <- function(m, s, p) {
      cdf <- function(x) sum(g$w * pnorm(x, m, s)) - p
      mu0 <- sum(g$w * m); sd0 <- sqrt(sum(g$w * (s^2 + m^2)) - mu0^2)
      uniroot(cdf, mu0 + c(-1, 1) * 20 * sd0, tol = 1e-12)$root
    }
    for (nm in colnames(g$M)) {
      m <- g$M[, nm]; s <- sqrt(g$V[, nm])
      mn <- sum(g$w * m); e2 <- sum(g$w * (s^2 + m^2))
      out[[nm]] <- list(mean = mn, sd = sqrt(e2 - mn^2),
                        q2.5 = qfun_mix(m, s, 0.025), q50 = qfun_mix(m, s, 0.5),
                        q97.5 = qfun_mix(m, s, 0.975),
                        prob_below_0 = sum(g$w * pnorm(0, m, s)))
    }
    ## tau: CDF from cumulative trapezoid weights, inverted by linear interpolation in log(tau)
    cw <- cumsum(g$w) - g$w / 2
    qtau <- function(p) exp(approx(cw, log(g$tau), xout = p, ties = "ordered")$y)
    mt <- sum(g$w * g$tau)
    out[["tau"]] <- list(mean = mt, sd = sqrt(sum(g$w * g$tau^2) - mt^2),
                         q2.5 = qtau(0.025), q50 = qtau(0.5), q97.5 = qtau(0.975),
                         q0.5 = qtau(0.005), q99 = qtau(0.99), q99.5 = qtau(0.995),
                         prob_tau_above_1 = 1 - approx(log(g$tau), cw, xout = 0)$y)
    out[["log_tau"]] <- list(mean = sum(g$w * log(g$tau)))
    out
  }
  fine <- summarise(run_grid(n_grid))
  coarse <- summarise(run_grid((n_grid - 1L) %/% 2L + 1L))
  diff <- max(abs(unlist(fine) - unlist(coarse)[names(unlist(fine))]))
  list(summary = fine, max_abs_change_when_halving_grid = diff,
       grid = sprintf("trapezoid in u = log(tau), u in [log(%g) - 25, log(%g) + 12], %d nodes",
                      tau_scale, tau_scale, n_grid))
}

compare_to_quad <- function(params, quad) {
  ## z = (JAGS mean - quadrature mean) / MCSE for every parameter both report
  out <- list()
  for (nm in intersect(names(params), names(quad$summary))) {
    p <- params[[nm]]; q <- quad$summary[[nm]]
    out[[nm]] <- list(jags_mean = p$mean, quad_mean = q$mean,
                      z_mean = (p$mean - q$mean) / p$mcse_mean,
                      jags_sd = p$sd, quad_sd = q$sd,
                      sd_rel_diff = (p$sd - q$sd) / q$sd)
  }
  out
}

## ---- running one case ----------------------------------------------------------
make_inits <- function(cs) {
  lapply(seq_len(N_CHAINS), function(ch) {
    ## over-dispersed, deterministic starting values for the top-level parameters
    spread <- c(-1, -0.3, 0.3, 1)[ch]
    tau_mult <- c(0.25, 0.75, 1.5, 3)[ch]
    init <- list(.RNG.name = RNG_NAME, .RNG.seed = 1000L * cs$number + ch)
    ic <- cs$init_center
    if (!is.null(ic$mu)) init$mu <- ic$mu + spread * max(1, ic$tau)
    if (!is.null(ic$b0)) init$b0 <- ic$b0 + spread
    if (!is.null(ic$b1)) init$b1 <- ic$b1 + spread * 0.02
    init$tau <- ic$tau * tau_mult
    init
  })
}

node_names <- function(cs, varnames) {
  ## map JAGS node name -> reported name (theta[1] -> theta[Aronson 1948])
  out <- varnames
  if (!is.null(cs$theta_labels)) {
    idx <- grepl("^theta\\[[0-9]+\\]$", varnames)
    num <- as.integer(sub("^theta\\[([0-9]+)\\]$", "\\1", varnames[idx]))
    out[idx] <- paste0("theta[", cs$theta_labels[num], "]")
  }
  out
}

run_case <- function(cs) {
  cat(sprintf("== %s ==\n", cs$name))
  n_iter <- if (nzchar(iter_override)) as.integer(iter_override) else cs$n_iter
  inits <- make_inits(cs)
  t0 <- Sys.time()
  model <- jags.model(textConnection(cs$code), data = cs$jags_data,
                      inits = inits, n.chains = N_CHAINS, n.adapt = N_ADAPT,
                      quiet = TRUE)
  update(model, N_BURNIN, progress.bar = "none")
  samp <- coda.samples(model, cs$monitor, n.iter = n_iter, thin = cs$thin,
                       progress.bar = "none")
  elapsed_sampling <- as.numeric(difftime(Sys.time(), t0, units = "secs"))

  ## keep only the reported nodes, in a stable order
  vars <- varnames(samp)
  keep <- unlist(lapply(cs$monitor, function(p)
    vars[vars == p | startsWith(vars, paste0(p, "["))]))
  samp <- samp[, keep, drop = FALSE]

  pooled <- as.matrix(samp)
  ess    <- coda::effectiveSize(samp)
  gd     <- coda::gelman.diag(samp, autoburnin = FALSE, multivariate = FALSE)$psrf
  pm     <- colMeans(pooled)
  psd    <- apply(pooled, 2, sd)
  qs     <- apply(pooled, 2, quantile, probs = QUANTILES, names = FALSE)
  mcse   <- psd / sqrt(ess)

  reported <- node_names(cs, keep)
  params <- list()
  for (j in seq_along(keep)) {
    params[[reported[j]]] <- list(
      jags_node = keep[j],
      mean = unname(pm[j]), sd = unname(psd[j]),
      q2.5 = qs[1, j], q50 = qs[2, j], q97.5 = qs[3, j],
      mcse_mean = unname(mcse[j]), ess = unname(ess[j]),
      rhat = unname(gd[j, 1]), rhat_upper_ci = unname(gd[j, 2]))
  }
  ## derived: E[log tau] (a sensitive check of the small-tau region)
  derived <- NULL
  if ("tau" %in% keep) {
    lt <- coda::mcmc.list(lapply(samp, function(ch) coda::mcmc(log(as.matrix(ch)[, "tau"]))))
    lt_ess <- unname(coda::effectiveSize(lt))
    lt_all <- unlist(lapply(lt, as.numeric))
    derived <- list(log_tau = list(mean = mean(lt_all), sd = sd(lt_all),
                                   mcse_mean = sd(lt_all) / sqrt(lt_ess), ess = lt_ess))
  }
  elapsed <- as.numeric(difftime(Sys.time(), t0, units = "secs"))

  ## deterministic cross-check (Gaussian models only)
  quadrature <- NULL
  if (!is.null(cs$quad)) {
    tq <- Sys.time()
    qs_ <- quad_summary(cs$quad(), cs$tau_family, cs$jags_data$tau_scale)
    cmp <- compare_to_quad(params, qs_)
    if (!is.null(derived)) {
      cmp[["log_tau"]] <- list(jags_mean = derived$log_tau$mean,
                               quad_mean = qs_$summary$log_tau$mean,
                               z_mean = (derived$log_tau$mean - qs_$summary$log_tau$mean) /
                                 derived$log_tau$mcse_mean)
    }
    zs <- vapply(cmp, function(z) z$z_mean, 0)
    quadrature <- c(qs_, list(comparison_with_jags = cmp,
                              max_abs_z_mean = max(abs(zs)),
                              seconds = as.numeric(difftime(Sys.time(), tq, units = "secs"))))
    cat(sprintf("quadrature check: max |JAGS mean - quadrature mean| / MCSE = %.2f over %d quantities (grid change %.1e)\n",
                max(abs(zs)), length(zs), qs_$max_abs_change_when_halving_grid))
    if (max(abs(zs)) > 5)
      stop(sprintf("%s: JAGS and quadrature disagree (max |z| = %.1f)", cs$name, max(abs(zs))))
  }
  tab <- data.frame(mean = pm, sd = psd, q2.5 = qs[1, ], q50 = qs[2, ],
                    q97.5 = qs[3, ], mcse = mcse, ess = round(ess),
                    rhat = gd[, 1], row.names = reported)
  print(signif(tab, 5))
  cat(sprintf("time: %.1f s\n\n", elapsed))

  bad_ess <- reported[ess < MIN_ESS]
  if (length(bad_ess) && !nzchar(iter_override))
    stop(sprintf("%s: ESS below %d for %s", cs$name, MIN_ESS,
                 paste(bad_ess, collapse = ", ")))
  bad_rhat <- reported[gd[, 1] > 1.01]
  if (length(bad_rhat))
    stop(sprintf("%s: R-hat > 1.01 for %s", cs$name, paste(bad_rhat, collapse = ", ")))

  list(
    description = cs$description,
    data_source = cs$data_source,
    data = cs$recorded_data,
    jags_data = cs$jags_data,
    priors = cs$priors,
    equations = cs$equations,
    jags_code = cs$code,
    mcmc = list(
      n_chains = N_CHAINS, n_adapt = N_ADAPT, n_burnin = N_BURNIN,
      n_iter_per_chain = n_iter, thin = cs$thin,
      n_draws_total = nrow(pooled),
      rng_name = RNG_NAME,
      seeds = vapply(inits, function(z) z$.RNG.seed, integer(1)),
      inits = lapply(inits, function(z) z[setdiff(names(z), c(".RNG.name", ".RNG.seed"))]),
      glm_module = FALSE,
      parameterisation = if (cs$centred) "centred" else "non-centred",
      seconds = elapsed),
    parameters = params,
    derived = derived,
    quadrature = quadrature,
    published = cs$published
  )
}

results <- list()
for (cs in cases) results[[cs$name]] <- run_case(cs)
validation_results <- list()
for (cs in validation_cases) validation_results[[cs$name]] <- run_case(cs)
total_seconds <- as.numeric(difftime(Sys.time(), t_start_all, units = "secs"))

## ---- JSON writer ------------------------------------------------------------------
## Numbers: shortest of 15/16/17 significant digits that round-trips the double,
## so data (e.g. escalc yi/vi) are recorded exactly.
fmt_num <- function(v) {
  if (is.na(v)) return("null")
  if (is.infinite(v)) stop("infinite value in JSON output")
  if (v == round(v) && abs(v) < 1e15) return(sprintf("%.0f", v))
  for (d in 15:17) {
    s <- sprintf("%.*g", d, v)
    if (as.numeric(s) == v) return(s)
  }
  sprintf("%.17g", v)
}
json_str <- function(s) as.character(jsonlite::toJSON(s, auto_unbox = TRUE))
to_json <- function(x, indent = 0L) {
  pad  <- strrep("  ", indent)
  pad1 <- strrep("  ", indent + 1L)
  if (is.null(x)) return("null")
  if (is.matrix(x)) {  # row-major list of rows
    rows <- lapply(seq_len(nrow(x)), function(i) I(x[i, ]))
    return(to_json(rows, indent))
  }
  if (is.list(x)) {
    if (length(x) == 0L) return(if (is.null(names(x))) "[]" else "{}")
    items <- vapply(x, to_json, character(1), indent = indent + 1L)
    if (!is.null(names(x))) {
      items <- paste0(pad1, vapply(names(x), json_str, character(1)), ": ", items)
      return(paste0("{\n", paste(items, collapse = ",\n"), "\n", pad, "}"))
    }
    return(paste0("[\n", paste0(pad1, items, collapse = ",\n"), "\n", pad, "]"))
  }
  as_array <- inherits(x, "AsIs") || length(x) != 1L
  x <- unclass(x)
  vals <- if (is.character(x)) vapply(x, json_str, character(1))
          else if (is.logical(x)) ifelse(is.na(x), "null", ifelse(x, "true", "false"))
          else vapply(as.numeric(x), fmt_num, character(1))
  if (as_array) paste0("[", paste(vals, collapse = ", "), "]") else vals
}

## arrays that must stay arrays even with one element
as_arrays <- function(res) {
  for (nm in names(res)) {
    res[[nm]]$data <- lapply(res[[nm]]$data, function(v) if (length(v) > 1) I(v) else v)
    res[[nm]] <- Filter(Negate(is.null), res[[nm]])
  }
  res
}
results <- as_arrays(results)
validation_results <- as_arrays(validation_results)

out <- list(
  description = paste(
    "Independent JAGS reference posterior summaries for bayeskit's PyMC models.",
    "Generated by make_jags_reference.R in this directory; see README.md."),
  generated = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  versions = versions,
  settings = list(n_chains = N_CHAINS, n_adapt = N_ADAPT, n_burnin = N_BURNIN,
                  min_ess = MIN_ESS, rng_name = RNG_NAME,
                  seed_rule = "chain c of case number q uses .RNG.seed = 1000*q + c",
                  quantile_type = "R quantile() type 7 on the pooled draws of all chains",
                  ess = "coda::effectiveSize on the mcmc.list (sum over chains)",
                  mcse_mean = "sd / sqrt(ess)",
                  rhat = "coda::gelman.diag(autoburnin = FALSE, multivariate = FALSE) point estimate; upper CI also given",
                  parameterisation = "per case (cases.<name>.mcmc.parameterisation): centred theta_i ~ N(mu, tau^2) or non-centred theta_i = mu + tau*eta_i, eta_i ~ N(0,1); both give the same posterior"),
  total_seconds = total_seconds,
  cases = results,
  validation_cases = validation_results
)
json_txt <- to_json(out)
## sanity check: valid JSON
invisible(jsonlite::fromJSON(json_txt, simplifyVector = FALSE))
if (!nzchar(only) && !nzchar(iter_override)) {
  writeLines(json_txt, file.path(outdir, "reference.json"))
  cat("wrote", file.path(outdir, "reference.json"), "\n")
} else {
  tmp <- file.path(tempdir(), "reference_partial.json")
  writeLines(json_txt, tmp)
  cat("partial run: wrote", tmp, "(reference.json untouched)\n")
}

## ---- README -----------------------------------------------------------------------
if (!nzchar(only) && !nzchar(iter_override)) {
  f3 <- function(x) formatC(x, digits = 4, format = "fg", flag = "#")
  L <- c(
"# JAGS reference posteriors",
"",
"Independent posterior summaries computed with **JAGS** (through R's `rjags`),",
"used to test bayeskit's PyMC models. R and JAGS are needed only to",
"**regenerate** these files; nothing in the Python package depends on R.",
"",
"Files:",
"",
"* `make_jags_reference.R`: the generator (this README is written by it).",
"* `reference.json`: data exactly as used, priors, equations, JAGS code, MCMC",
"  settings, and per-parameter summaries for every case.",
"",
"## Software",
"",
sprintf("* %s (%s)", versions$R, versions$platform),
sprintf("* JAGS %s", versions$JAGS),
sprintf("* rjags %s, coda %s, jsonlite %s", versions$rjags, versions$coda, versions$jsonlite),
sprintf("* metafor %s, metadat %s (data sets and `escalc`)", versions$metafor, versions$metadat),
"* Debian 12 packages: `jags r-cran-rjags r-cran-coda r-cran-jsonlite r-cran-metafor r-cran-metadat`",
"",
"## How to regenerate",
"",
"```sh",
"apt-get install -y --no-install-recommends jags r-cran-rjags r-cran-coda \\",
"    r-cran-jsonlite r-cran-metafor r-cran-metadat",
"Rscript tests/reference/jags/make_jags_reference.R   # from any directory",
"```",
"",
"The script writes `reference.json` and `README.md` next to itself. It stops",
sprintf("with an error if any reported parameter has ESS < %d or R-hat > 1.01.", MIN_ESS),
"With the same software versions, the output is reproducible exactly (fixed seeds).",
sprintf("The full run took **%.0f s** (wall clock, single core) on the machine that produced the committed files; per case times are below and in `reference.json` (`cases.<name>.mcmc.seconds`).", total_seconds),
"",
"## MCMC settings (all cases)",
"",
sprintf("* %d chains, `n.adapt = %d` adaptation iterations, then %d burn-in iterations (both discarded).", N_CHAINS, N_ADAPT, N_BURNIN),
"* Kept iterations per chain and thinning: see each case (no thinning was needed).",
sprintf("* RNG: `.RNG.name = \"%s\"`, `.RNG.seed = 1000*q + c` for chain c = 1..4 of case number q (q listed per case).", RNG_NAME),
"* Over-dispersed fixed initial values for mu (or b0, b1) and tau (in `reference.json`, `mcmc.inits`); other nodes initialised by JAGS from the chain's seeded RNG.",
"* Only JAGS' base samplers (the `glm` module is not loaded).",
"* Summaries on the pooled draws of all chains: mean, sd, 2.5/50/97.5 % quantiles (R `quantile` type 7).",
"* ESS: `coda::effectiveSize` on the `mcmc.list` (summed over chains). MCSE of the mean = sd / sqrt(ESS).",
"* R-hat: `coda::gelman.diag(autoburnin = FALSE, multivariate = FALSE)` point estimate (upper CI also stored).",
"* Derived for every case with tau: E[log tau] from the draws (with its own ESS/MCSE), under `derived`.",
"",
"### Deterministic cross-check by quadrature",
"",
"For the all-Gaussian cases (`eight_schools_nn`, `bcg_nn`, `bcg_nn_meta_regression`,",
"`normand_normal_arm`, `two_study_nn`) every unknown other than tau is jointly Gaussian",
"given tau. The script therefore also computes the posterior WITHOUT MCMC:",
"p(tau | y) is prior(tau) x Gaussian marginal likelihood (exact, by Cholesky), and each",
"of mu / b0 / b1 / theta_i / theta_new is a mixture over p(tau | y) of normals with",
"exactly known conditional means and variances. The 1-D integral is a trapezoidal rule",
"in u = log(tau) over 40,001 nodes (u from log(s) - 25 to log(s) + 12, s = prior scale);",
"halving the grid changes no summary by more than the reported `max_abs_change_when_halving_grid`.",
"Quantiles are found by root-finding on the mixture CDF (tau: interpolation of the",
"cumulative weights). The result is stored under `quadrature` with a `comparison_with_jags`",
"(z = (JAGS mean - quadrature mean) / MCSE); the script stops if any |z| > 5.",
"For these cases the quadrature values are the more precise reference (error well below the",
"MCSE); the JAGS values are the independent MCMC check. The binomial-normal cases have no",
"such closed form and rely on JAGS alone.",
"",
"### Using these numbers in tests",
"",
"* JAGS summaries carry Monte Carlo error: compare a PyMC posterior mean m with the",
"  reference mean r using a tolerance of a few times sqrt(MCSE_ref^2 + MCSE_pymc^2)",
"  (MCSE_ref = `mcse_mean`); sds and quantiles have larger Monte Carlo error than means,",
"  especially tau's upper tail under the half-Cauchy prior, so use relative tolerances there.",
"* For the Gaussian cases prefer `quadrature.summary` (numerical error <= `max_abs_change_when_halving_grid`, 2e-4 or less) as the",
"  target, and keep the JAGS values as the independent check.",
"* Parameter keys: `mu`, `tau`, `b0`, `b1`, `theta_new` and `theta[<study label>]`;",
"  `jags_node` gives JAGS' own index (`theta[3]`). Study order is the data set's row order.",
"",
"### Parameterisation",
"",
"The random effects are coded in JAGS either **centred**, `theta[i] ~ dnorm(mean_i, 1/tau^2)`,",
"or **non-centred**, `theta[i] <- mean_i + tau * eta[i]` with `eta[i] ~ dnorm(0, 1)`. This is a",
"change of variables: the joint posterior of (mu, tau, theta) is the same. The choice only changes",
"how well JAGS' samplers mix; it was made per case from pilot runs (non-centred where tau is weakly",
"identified and often near 0: eight schools, Nielweise, two studies; centred where the data are",
"informative about each theta_i: BCG, meta-regression, Normand). `theta_new <- mu + tau * eta_new`",
"with `eta_new ~ dnorm(0, 1)` is a draw from N(mu, tau^2) at every iteration (the predictive",
"distribution of a new study's true effect) in every case.",
"JAGS conventions: `dnorm(mean, precision)`; half-normal tau with scale s is",
"`dnorm(0, 1/s^2) T(0,)`; half-Cauchy tau with scale s is `dt(0, 1/s^2, 1) T(0,)`.",
""
  )
  case_section <- function(cs, r, heading) {
    L <- c(
      sprintf("%s %d: `%s`", heading, cs$number, cs$name), "",
      cs$description, "",
      paste0("**Data source:** ", cs$data_source), "",
      "**Model (equations):**", "", "```text", cs$equations, "```", "",
      "**JAGS code:**", "", "```text", sub("\n$", "", cs$code), "```", "",
      sprintf("**MCMC:** %s parameterisation; %d chains x %d kept iterations (thin %d) = %d draws; seeds %s; run time %.1f s.",
              r$mcmc$parameterisation, N_CHAINS, r$mcmc$n_iter_per_chain, cs$thin, r$mcmc$n_draws_total,
              paste(r$mcmc$seeds, collapse = ", "), r$mcmc$seconds), "",
      "| parameter | mean | sd | 2.5% | 50% | 97.5% | MCSE(mean) | ESS | R-hat |",
      "|---|---|---|---|---|---|---|---|---|")
    for (pn in names(r$parameters)) {
      p <- r$parameters[[pn]]
      L <- c(L, sprintf("| %s | %s | %s | %s | %s | %s | %s | %.0f | %.4f |",
        pn, f3(p$mean), f3(p$sd), f3(p$q2.5), f3(p$q50), f3(p$q97.5),
        formatC(p$mcse_mean, digits = 2, format = "g"), p$ess, p$rhat))
    }
    if (!is.null(r$derived))
      L <- c(L, "", sprintf("Derived: E[log tau] = %s (MCSE %s).", f3(r$derived$log_tau$mean),
                            formatC(r$derived$log_tau$mcse_mean, digits = 2, format = "g")))
    if (!is.null(r$quadrature)) {
      q <- r$quadrature
      L <- c(L, "",
        sprintf("**Deterministic cross-check (quadrature over tau, %.1f s; grid-halving change %.1e):** largest |JAGS mean - quadrature mean| / MCSE = %.2f.",
                q$seconds, q$max_abs_change_when_halving_grid, q$max_abs_z_mean), "",
        "| quantity | quadrature mean | quadrature sd | 2.5% | 50% | 97.5% | JAGS z |",
        "|---|---|---|---|---|---|---|")
      for (pn in names(q$summary)) {
        qq <- q$summary[[pn]]; z <- q$comparison_with_jags[[pn]]$z_mean
        L <- c(L, sprintf("| %s | %s | %s | %s | %s | %s | %s |", pn, f3(qq$mean),
          if (is.null(qq$sd)) "" else f3(qq$sd), if (is.null(qq$q2.5)) "" else f3(qq$q2.5),
          if (is.null(qq$q50)) "" else f3(qq$q50), if (is.null(qq$q97.5)) "" else f3(qq$q97.5),
          if (is.null(z)) "" else sprintf("%.2f", z)))
      }
    }
    if (!is.null(cs$published)) {
      L <- c(L, "", paste0("**Published values** (", cs$published$source, ") against this pipeline:"), "",
             "| quantity | published | quadrature | JAGS |", "|---|---|---|---|")
      key <- c(median = "q50", mean = "mean", sd = "sd", q2.5 = "q2.5", q97.5 = "q97.5",
               q0.5 = "q0.5", q99 = "q99", q99.5 = "q99.5", prob_mu_below_0 = "prob_below_0")
      for (pn in setdiff(names(cs$published), "source")) {
        pv <- cs$published[[pn]]
        for (st in names(pv)) {
          qv <- r$quadrature$summary[[pn]][[key[[st]]]]
          jv <- r$parameters[[pn]][[key[[st]]]]
          L <- c(L, sprintf("| %s %s | %s | %s | %s |", pn, st, format(pv[[st]], digits = 8),
                            if (is.null(qv)) "" else format(qv, digits = 7),
                            if (is.null(jv)) "" else format(jv, digits = 5)))
        }
      }
    }
    c(L, "")
  }
  for (cs in cases) L <- c(L, case_section(cs, results[[cs$name]], "## Case"))
  L <- c(L,
"## Validation cases (not bayeskit targets)",
"",
"These re-run published examples (computed by the bayesmeta R package with its",
"numerical-integration algorithm) through the same JAGS pipeline and the same",
"quadrature, to check both end to end. They are stored under",
"`validation_cases` in `reference.json`, separate from `cases`. See",
"`../published/README.md` for the sources. bayesmeta's own numbers are",
"approximations with a bounded error (its default DIRECT algorithm), so agreement",
"to about 3 significant digits is what to expect.",
"")
  for (cs in validation_cases) L <- c(L, case_section(cs, validation_results[[cs$name]], "### Validation case"))
  L <- c(L,
"## Data notes",
"",
"* Eight schools: y and sigma exactly as in BDA3 Table 5.2; the model uses v = sigma^2.",
"* BCG (`bcg_nn`, `bcg_nn_meta_regression`, `two_study_nn`): `yi`/`vi` are metafor 3.8-1",
"  `escalc(\"RR\", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)` (log risk ratio,",
"  vaccinated vs not; no zero cells, so no continuity correction). Stored in",
"  `reference.json` with 15-17 significant digits (exact round trip of the doubles).",
"  Study labels are `paste(author, year)`.",
"* Nielweise 2007: arm-level counts used as is (no continuity correction; the binomial",
"  likelihood handles zero cells). Includes the double-zero study Yucel 2004 (0/118 vs 0/105).",
"  Labels are `paste(author, year)`.",
"* BCG binomial-normal: treatment arm = vaccinated (tpos of tpos+tneg), control = not vaccinated",
"  (cpos of cpos+cneg); theta is a log **odds** ratio here, not the log risk ratio of `bcg_nn`.",
"* Normand 1999: group 1 (specialist care) = treatment, group 2 (routine care) = control;",
"  the observed SDs are plugged in as known; labels are the `source` column.",
"* In `reference.json`, `jags_data` holds the data list exactly as passed to JAGS (arm",
"  matrices have column 1 = control, column 2 = treatment); `data` holds the same",
"  data in named, per-arm form.",
"",
"## Citations",
"",
"* Gelman A, Carlin JB, Stern HS, Dunson DB, Vehtari A, Rubin DB (2013). *Bayesian Data Analysis*, 3rd ed. CRC Press. Section 5.5, Table 5.2.",
"* Rubin DB (1981). Estimation in parallel randomized experiments. *Journal of Educational Statistics* 6(4):377-401.",
"* Colditz GA, Brewer TF, Berkey CS, et al. (1994). Efficacy of BCG vaccine in the prevention of tuberculosis: meta-analysis of the published literature. *JAMA* 271(9):698-702.",
"* Niel-Weise BS, Stijnen T, van den Broek PJ (2007). Anti-infective-treated central venous catheters: a systematic review of randomized controlled trials. *Intensive Care Medicine* 33:2058-2068. (Data as in metadat's `dat.nielweise2007`, see its help page.)",
"* Normand S-LT (1999). Meta-analysis: formulating, evaluating, combining, and reporting. *Statistics in Medicine* 18(3):321-359.",
"* Jackson D, Law M, Stijnen T, Viechtbauer W, White IR (2018). A comparison of seven random-effects models for meta-analyses that estimate the summary odds ratio. *Statistics in Medicine* 37(7):1059-1085.",
"* Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. *Journal of Statistical Software* 36(3):1-48.",
"* Plummer M (2003). JAGS: A program for analysis of Bayesian graphical models using Gibbs sampling. *Proceedings of DSC 2003*.",
"")
  writeLines(L, file.path(outdir, "README.md"))
  cat("wrote", file.path(outdir, "README.md"), "\n")
}
cat(sprintf("total time: %.1f s\n", total_seconds))
