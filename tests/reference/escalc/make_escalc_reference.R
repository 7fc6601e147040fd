#!/usr/bin/env Rscript
## Reference values for effect-size computation, produced with metafor::escalc().
##
## Usage (from anywhere):
##   Rscript tests/reference/escalc/make_escalc_reference.R
## Writes one CSV per case into the directory that contains this script.
##
## Requires R with the packages 'metafor' and 'metadat'
## (Debian: apt-get install r-base-core r-cran-metafor r-cran-metadat).
## R is only needed to REGENERATE these files; the CSVs are committed.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
})

## ---- output directory = directory of this script -------------------------
args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(file_arg) == 1L) dirname(normalizePath(file_arg)) else getwd()

cat("R:", R.version.string, "\n")
cat("metafor:", as.character(packageVersion("metafor")), "\n")
cat("metadat:", as.character(packageVersion("metadat")), "\n")
cat("output directory:", outdir, "\n\n")

## ---- number formatting -----------------------------------------------------
## Shortest of 15/16/17 significant digits that parses back to the identical
## double; 17 significant digits always round-trips an IEEE-754 double.
fmt_num <- function(x) {
  x <- as.numeric(x)
  vapply(x, function(v) {
    if (is.na(v)) return("NA")
    for (d in 15:17) {
      s <- sprintf("%.*g", d, v)
      if (as.numeric(s) == v) return(s)
    }
    sprintf("%.17g", v)
  }, character(1), USE.NAMES = FALSE)
}

## ---- case writer -----------------------------------------------------------
## inputs: data.frame with column 'study' (character) + numeric input columns
##         named as metafor's escalc arguments.
## call:   an unevaluated escalc() call; evaluated with 'data' = the data set.
calls_log <- character(0)

write_case <- function(name, inputs, call, data) {
  es <- eval(call, envir = list(data = data), enclos = globalenv())
  out <- inputs
  out$yi <- as.numeric(es$yi)
  out$vi <- as.numeric(es$vi)
  stopifnot(nrow(out) == nrow(data), !anyDuplicated(out$study))
  txt <- out
  for (nm in setdiff(names(txt), "study")) txt[[nm]] <- fmt_num(txt[[nm]])
  path <- file.path(outdir, paste0(name, ".csv"))
  write.table(txt, path, sep = ",", row.names = FALSE, col.names = TRUE,
              quote = which(names(txt) == "study"), na = "NA", eol = "\n")
  ## round-trip check: every numeric column must read back bit-identical
  back <- read.csv(path, stringsAsFactors = FALSE)
  stopifnot(identical(names(back), names(out)), identical(back$study, out$study))
  for (nm in setdiff(names(out), "study")) {
    a <- as.numeric(out[[nm]]); b <- as.numeric(back[[nm]])
    if (!identical(is.na(a), is.na(b)) || any(a[!is.na(a)] != b[!is.na(b)]))
      stop("round-trip failure in ", name, " column ", nm)
  }
  call_txt <- paste(deparse(call, width.cutoff = 500L), collapse = " ")
  calls_log <<- c(calls_log, sprintf("%-22s %s", name, call_txt))
  cat(sprintf("%-22s k=%2d  NA rows=%d  -> %s\n", name, nrow(out),
              sum(is.na(out$yi)), basename(path)))
  invisible(out)
}

## ===========================================================================
## 1. dat.bcg (Colditz et al., 1994): log OR, log RR, RD with default settings
## ===========================================================================
bcg <- dat.bcg
bcg_in <- data.frame(study = paste(bcg$author, bcg$year),
                     ai = bcg$tpos, bi = bcg$tneg, ci = bcg$cpos, di = bcg$cneg,
                     n1i = bcg$tpos + bcg$tneg, n2i = bcg$cpos + bcg$cneg,
                     stringsAsFactors = FALSE)
for (m in c("OR", "RR", "RD")) {
  cl <- substitute(escalc(measure = M, ai = tpos, bi = tneg, ci = cpos, di = cneg,
                          data = data), list(M = m))
  r <- write_case(paste0("bcg_", m), bcg_in, cl, bcg)
  if (m == "RR") {
    ## sanity check against the values printed in metafor's documentation
    stopifnot(all.equal(round(r$yi, 4),
      c(-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209,
         0.0120, -0.4694, -1.3713, -0.3394,  0.4459, -0.0173)))
    stopifnot(all.equal(round(r$vi, 4),
      c(0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230,
        0.0040, 0.0564, 0.0730, 0.0124, 0.5325, 0.0714)))
  }
}

## ===========================================================================
## 2. dat.nielweise2007 (Niel-Weise et al., 2007): binary data with zero cells,
##    including one double-zero study (Yucel 2004: 0/118 vs 0/105).
## ===========================================================================
niel <- dat.nielweise2007
niel_in <- data.frame(study = paste(niel$author, niel$year),
                      ai = niel$ai, bi = niel$n1i - niel$ai,
                      ci = niel$ci, di = niel$n2i - niel$ci,
                      n1i = niel$n1i, n2i = niel$n2i,
                      stringsAsFactors = FALSE)
for (m in c("OR", "RR", "RD")) {
  cl <- substitute(escalc(measure = M, ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                          data = data), list(M = m))
  write_case(paste0("nielweise2007_", m), niel_in, cl, niel)
}
write_case("nielweise2007_OR_toall", niel_in,
           quote(escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                        data = data, add = 1/2, to = "all")), niel)
r <- write_case("nielweise2007_OR_drop00", niel_in,
           quote(escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                        data = data, drop00 = TRUE)), niel)
stopifnot(sum(is.na(r$yi)) == 1L, r$study[is.na(r$yi)] == "Yucel 2004")

## ===========================================================================
## 3. dat.pritz1997 (Zhou et al., 1999): single proportions, logit (PLO);
##    two studies have xi == ni (Tanabe et al. 10/10, Hadeishi et al. 12/12).
## ===========================================================================
pritz <- dat.pritz1997
pritz_in <- data.frame(study = pritz$authors, xi = pritz$xi, ni = pritz$ni,
                       stringsAsFactors = FALSE)
write_case("pritz1997_PLO", pritz_in,
           quote(escalc(measure = "PLO", xi = xi, ni = ni, data = data)), pritz)

## ===========================================================================
## 4. dat.normand1999 (Normand, 1999): MD and SMD, default vtype ("LS")
## ===========================================================================
norm <- dat.normand1999
norm_in <- data.frame(study = norm$source,
                      m1i = norm$m1i, sd1i = norm$sd1i, n1i = norm$n1i,
                      m2i = norm$m2i, sd2i = norm$sd2i, n2i = norm$n2i,
                      stringsAsFactors = FALSE)
for (m in c("MD", "SMD")) {
  cl <- substitute(escalc(measure = M, m1i = m1i, sd1i = sd1i, n1i = n1i,
                          m2i = m2i, sd2i = sd2i, n2i = n2i, data = data),
                   list(M = m))
  write_case(paste0("normand_", m), norm_in, cl, norm)
}

## ===========================================================================
## 5. Morris (2008) pre/post data (not in metadat 1.2-0; values typed in from
##    metafor's analysis example 'morris2008', metafor-project.org, which is
##    also used in metafor's own test suite). Treatment groups (T) and control
##    groups (C) of 5 studies, stacked into 10 single-group rows.
##    m1i = post-test mean, m2i = pre-test mean, sd1i = post SD, sd2i = pre SD,
##    ri = pre/post correlation as reported (given in the data).
## ===========================================================================
morrisT <- data.frame(
  m_pre   = c(30.6, 23.5, 0.5, 53.4, 35.6),
  m_post  = c(38.5, 26.8, 0.7, 75.9, 36.0),
  sd_pre  = c(15.0, 3.1, 0.1, 14.5, 4.7),
  sd_post = c(11.6, 4.1, 0.1, 4.4, 4.6),
  ni      = c(20, 50, 9, 10, 14),
  ri      = c(.47, .64, .77, .89, .44))
morrisC <- data.frame(
  m_pre   = c(23.1, 24.9, 0.6, 55.7, 34.8),
  m_post  = c(19.7, 25.3, 0.6, 60.7, 33.4),
  sd_pre  = c(13.8, 4.1, 0.2, 17.3, 3.1),
  sd_post = c(14.8, 3.3, 0.2, 17.9, 6.9),
  ni      = c(20, 42, 9, 11, 14),
  ri      = c(.47, .64, .77, .89, .44))
morris <- rbind(morrisT, morrisC)
morris$study <- c(paste0("Study ", 1:5, " (T)"), paste0("Study ", 1:5, " (C)"))
morris_in <- data.frame(study = morris$study,
                        m1i = morris$m_post, m2i = morris$m_pre,
                        sd1i = morris$sd_post, sd2i = morris$sd_pre,
                        ni = morris$ni, ri = morris$ri, stringsAsFactors = FALSE)

write_case("morris_MC", morris_in,
           quote(escalc(measure = "MC", m1i = m_post, m2i = m_pre, sd1i = sd_post,
                        sd2i = sd_pre, ni = ni, ri = ri, data = data)), morris)
r <- write_case("morris_SMCC", morris_in,
           quote(escalc(measure = "SMCC", m1i = m_post, m2i = m_pre, sd1i = sd_post,
                        sd2i = sd_pre, ni = ni, ri = ri, data = data)), morris)
## check against metafor's own test suite (test_analysis_example_morris2008.r)
stopifnot(all.equal(round(r$yi, 4), c(0.5417, 1.0198, 2.6619, 1.9088, 0.0765,
                                      -0.2213, 0.1219, 0.0000, 0.5575, -0.2126)))
stopifnot(all.equal(round(r$vi, 4), c(0.0573, 0.0304, 0.5048, 0.2822, 0.0716,
                                      0.0512, 0.0240, 0.1111, 0.1050, 0.0730)))
## SMCR as requested: standardised by sd1i = POST-test SD (sd2i is not used).
write_case("morris_SMCR", morris_in,
           quote(escalc(measure = "SMCR", m1i = m_post, m2i = m_pre, sd1i = sd_post,
                        ni = ni, ri = ri, data = data)), morris)
## SMCR the usual way (Becker 1988 / metafor example): sd1i = PRE-test SD.
## In this CSV, sd1i holds the pre-test SD and sd2i the post-test SD.
morris_in_pre <- morris_in
morris_in_pre$sd1i <- morris$sd_pre
morris_in_pre$sd2i <- morris$sd_post
r <- write_case("morris_SMCR_sdpre", morris_in_pre,
           quote(escalc(measure = "SMCR", m1i = m_post, m2i = m_pre, sd1i = sd_pre,
                        ni = ni, ri = ri, data = data)), morris)
stopifnot(all.equal(round(r$yi, 4), c(0.5056, 1.0481, 1.8054, 1.4181, 0.0801,
                                      -0.2365, 0.0958, 0.0000, 0.2667, -0.4250)))
stopifnot(all.equal(round(r$vi, 4), c(0.0594, 0.0254, 0.2322, 0.1225, 0.0802,
                                      0.0544, 0.0173, 0.0511, 0.0232, 0.0864)))

cat("\nescalc calls used ('data' = the data set of the case):\n")
cat(calls_log, sep = "\n")
cat("\nAll cases written and round-trip checked.\n")
